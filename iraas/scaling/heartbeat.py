"""A worker's heartbeat thread: it reports busy or idle every few seconds, so that the scaler stops
only idle workers (what is published and where: ``iraas/scaling/status.py``)."""

from __future__ import annotations

import contextlib
import threading
import time
from collections.abc import Callable

from iraas.scaling.status import Heartbeat, StatusStore


class HeartbeatPublisher:
    """A daemon thread that publishes ``state()`` every ``interval_s`` seconds.

    ``also`` runs on the same tick after each beat, and once more when stopping (before the
    heartbeat is removed): the worker publishes its metrics there, so they cost no thread of
    their own and no call per image.
    """

    def __init__(
        self, store: StatusStore, worker_id: str, state: Callable[[], tuple[bool, float]], interval_s: float,
        also: Callable[[], object] | None = None,
    ) -> None:
        self._store, self._id, self._state = store, worker_id, state
        self._interval = interval_s
        self._also = also
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._loop, name="heartbeat", daemon=True)

    def start(self) -> None:
        self.beat()
        self._thread.start()

    def beat(self) -> None:
        busy, idle_since = self._state()
        self._store.beat(Heartbeat(self._id, busy, None if busy else idle_since, time.time()))

    def stop(self) -> None:
        self._stop.set()
        if self._thread.is_alive():  # no tick may run after this last flush
            self._thread.join(timeout=self._interval + 5)
        self._run_also()  # what the last batch answered is published before the worker goes
        # A heartbeat left behind goes stale and is ignored by the scaler.
        with contextlib.suppress(Exception):
            self._store.remove(self._id)

    def _loop(self) -> None:
        while not self._stop.wait(self._interval):
            with contextlib.suppress(Exception):  # keep beating; one failed PUT is not fatal
                self.beat()
            self._run_also()

    def _run_also(self) -> None:
        if self._also is not None:
            with contextlib.suppress(Exception):  # retried next tick; never stops the beat
                self._also()
