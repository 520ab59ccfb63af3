"""A web process's orderly stop: take no new work, let held requests finish, then answer the ones
still waiting with 503 and ``Retry-After``.

Nothing accepted is lost: a request that is still waiting when the drain time is up has its image
stored and its request queued; the 503 says so, with the id to ask ``GET /v1/images/{id}`` later.
The web servers (``iraas/web/server.py`` for chalice local, ``openstack/gunicorn.conf.py``) call
:func:`begin` on SIGTERM; the image service registers its waiters' release with :func:`on_release`.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable

log = logging.getLogger(__name__)

RETRY_AFTER_S = 10  # what a 503 of a stopping web process tells the client to wait

_stopping = threading.Event()
_released = threading.Event()
_lock = threading.Lock()
_releases: list[Callable[[], None]] = []


def stopping() -> bool:
    """Whether this process has begun its orderly stop (new requests get a 503)."""
    return _stopping.is_set()


def on_release(callback: Callable[[], None]) -> None:
    """Call ``callback`` when the drain time is up (at once if it already is)."""
    with _lock:
        _releases.append(callback)
        released = _released.is_set()
    if released:
        callback()


def begin(drain_s: float) -> None:
    """Stop taking new requests; after ``drain_s`` release the waiters still held."""
    with _lock:
        if _stopping.is_set():
            return
        _stopping.set()
    log.info("stopping: new requests get 503; waiting requests have %.1f s for their answers", drain_s)
    timer = threading.Timer(drain_s, release)
    timer.daemon = True
    timer.start()


def release() -> None:
    """Wake every waiting request now (they answer 503 unless their result is in S3)."""
    with _lock:
        _released.set()
        callbacks = list(_releases)
    for callback in callbacks:
        try:
            callback()
        except Exception:  # noqa: BLE001 - one failed release must not keep the others waiting
            log.exception("could not release waiting requests")

