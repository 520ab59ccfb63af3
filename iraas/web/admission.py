"""Whether a web server takes a request, decided from its request line and headers before a byte of
its body is read; and how long a client may take to send them.

Both long-running servers use it (``iraas/web/server.py``, chalice's local server; ``iraas/web/gthread.py``,
gunicorn's threaded worker), and the WSGI adapter under any other server: the key is checked
(:func:`iraas.web.auth.check_request`, the app's own check, with the route's say from
:func:`iraas.web.auth.route_needs_key`) and ``Content-Length`` against the route's body limit, so a
keyless or oversized upload is refused (401, 403, 413) at once, not after it has been read into
memory. What the servers do with a refusal and with the time limits is ``iraas/web/connections.py``.

:class:`WebLimits` are the connection limits, read once at start-up (``IRAAS_WEB_*``); the body
limits are the upload limits (``IRAAS_MAX_IMAGE_BYTES``, ``IRAAS_MAX_BATCH_BYTES``).
"""

from __future__ import annotations

import os
import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING

from iraas.config import MIB, integer, number
from iraas.errors import InvalidRequest, TooLarge
from iraas.media.uploads import UploadLimits
from iraas.web.auth import AuthSettings, check_request, route_needs_key
from iraas.web.errors import LengthRequired, Unavailable

if TYPE_CHECKING:
    from chalice import Chalice
    from chalice.local import RouteMatcher

KIB = 1024
BUSY_RETRY_AFTER_S = 1  # what a connection over the cap is told to wait


@dataclass(frozen=True)
class WebLimits:
    """How long a client may take and how many may be connected, per web process."""

    # From the moment a connection waits for a request (a new one, or a kept-alive one between its
    # requests) until the request's headers are in: a connection that sends nothing, or trickles its
    # headers, is cut then. A total deadline, not a per-read timeout.
    header_timeout_s: float = 20.0
    # The body must be in within body_timeout_s + its length / body_min_bytes_per_s (a 10 MiB image:
    # 20 s + 80 s). The app's own work after that (a `?wait=` of up to IRAAS_MAX_WAIT_S) has no deadline.
    body_timeout_s: float = 20.0
    body_min_bytes_per_s: int = 128 * KIB
    # Connections open at once, idle kept-alive ones included; one more is answered 503 with
    # Retry-After at once. Well above the bursts of 100 clients the listen backlog (256) is for.
    max_connections: int = 512
    # Of a refused request's body, at most this much, for at most this long, is read and dropped
    # before the connection is closed, so that the client reads the refusal rather than a reset.
    discard_bytes: int = 64 * KIB
    discard_s: float = 2.0
    # An answer the client does not read: each send may wait this long for room.
    send_timeout_s: float = 60.0

    def body_deadline_s(self, length: int) -> float:
        """Seconds a body of ``length`` bytes may take to arrive."""
        return self.body_timeout_s + length / self.body_min_bytes_per_s


def load_web_limits(env: Mapping[str, str] | None = None) -> WebLimits:
    """The ``IRAAS_WEB_*`` connection limits, checked; ConfigError names the variable."""
    env = os.environ if env is None else env
    d = WebLimits
    return WebLimits(
        header_timeout_s=number(env, "IRAAS_WEB_HEADER_TIMEOUT_S", d.header_timeout_s, 0.1, 3600),
        body_timeout_s=number(env, "IRAAS_WEB_BODY_TIMEOUT_S", d.body_timeout_s, 0.1, 3600),
        body_min_bytes_per_s=integer(env, "IRAAS_WEB_BODY_MIN_BYTES_PER_S", d.body_min_bytes_per_s, 1, 1024 * MIB),
        max_connections=integer(env, "IRAAS_WEB_MAX_CONNECTIONS", d.max_connections, 1, 100_000),
        discard_bytes=integer(env, "IRAAS_WEB_DISCARD_BYTES", d.discard_bytes, 0, 1024 * MIB),
        discard_s=number(env, "IRAAS_WEB_DISCARD_S", d.discard_s, 0, 600),
        send_timeout_s=number(env, "IRAAS_WEB_SEND_TIMEOUT_S", d.send_timeout_s, 0.1, 3600),
    )


BUSY = Unavailable(
    "busy", "this server holds as many connections as it takes; try again", retry_after_s=BUSY_RETRY_AFTER_S
)

BATCH_ROUTE = ("/v1/batches", "POST")
_DIGITS = re.compile(r"[0-9]{1,20}")


def route_pattern(routes: RouteMatcher, path: str) -> str | None:
    """The pattern of the route that serves ``path`` (with its query), None if none does: what a
    request is admitted by here and labelled by in the metrics (``iraas/web/project.py``)."""
    try:
        return str(routes.match_route(path).route)
    except ValueError:
        return None


@dataclass(frozen=True)
class Admitted:
    """A request the server may read: its body's length (None: chunked, read up to ``limit``)."""

    route: str | None  # the route's pattern, for the metrics; None: no route (the gateway's 404)
    length: int | None
    limit: int  # the most the body may hold
    named: int  # the limit a 413 names: the image's or the batch's (``limit`` adds multipart framing)


def content_length(headers: Mapping[str, str]) -> int | None:
    """The ``Content-Length`` of ``headers`` (None: not given); InvalidRequest if it is not a size."""
    raw = headers.get("content-length")
    if raw is None:
        return None
    if not _DIGITS.fullmatch(raw.strip()):
        raise InvalidRequest("bad_request", f"Content-Length {raw!r} is not a size")
    return int(raw)


class Admission:
    """The checks a request passes on its headers alone, for one Chalice app's routes."""

    def __init__(self, app: Chalice, auth: AuthSettings, uploads: UploadLimits) -> None:
        from chalice.local import RouteMatcher

        self._app = app
        self._routes = RouteMatcher(list(app.routes))
        self.auth = auth
        self.uploads = uploads

    def route(self, path: str) -> str | None:
        """The pattern of the route that serves ``path`` (with its query), None if none does."""
        return route_pattern(self._routes, path)

    def body_limit(self, route: str | None, method: str) -> tuple[int, int]:
        """The largest body the route takes, and the limit its 413 names (the image or the batch)."""
        if (route, method) == BATCH_ROUTE:
            return self.uploads.max_request_bytes, self.uploads.max_batch_bytes
        # One image, multipart framed; the other uploads (a video over HTTP, a student import) fit in it.
        return self.uploads.max_body_bytes, self.uploads.max_image_bytes

    def admit(self, method: str, path: str, headers: Mapping[str, str], chunked_ok: bool = True) -> Admitted:
        """Raise the refusal (Unauthorized, Forbidden, TooLarge, InvalidRequest) or say what to read.

        ``headers``: a mapping whose ``get`` finds lower-case names. ``chunked_ok``: whether the server
        can read a chunked body (gunicorn can; chalice's local server cannot).
        """
        route = self.route(path)
        if route is not None:  # no route: the gateway's 404, whoever asks
            entry = self._app.routes.get(route, {}).get(method)
            if route_needs_key(self.auth, route, method, entry.api_key_required if entry else None):
                check_request(self.auth, headers, {}, behind_gateway=False)
        length = content_length(headers)
        if headers.get("transfer-encoding") is not None and not chunked_ok:
            raise LengthRequired("length_required", "send the body with a Content-Length (chunked bodies are not read here)")
        limit, named = self.body_limit(route, method)
        if length is not None and length > limit:
            raise TooLarge(
                "too_large", f"the request body is {length} bytes; the limit is {named} bytes ({named / MIB:.1f} MiB)"
            )
        return Admitted(route, length, limit, named)
