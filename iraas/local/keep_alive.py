"""HTTP/1.1 keep-alive for werkzeug's threaded server, which the embedded endpoint runs on.

werkzeug answers every request with ``Connection: close`` (its ``run_wsgi``), because after the
response it drains whatever the socket still holds, and on a kept-alive connection that would be
the client's next request. So every boto3 call of every local process opened a TCP connection
and closed it: a connect, a handshake and a teardown per call, about a fifth of the CPU a worker
spends on a call (``bench.worker_cpu``), and nothing like AWS, whose endpoints keep connections
alive.

Here a connection stays open when that is safe: an HTTP/1.1 request without ``Connection:
close``, whose body has a ``Content-Length`` (or no body) and is read to its end before the
answer goes out, and an answer with a ``Content-Length`` (or none needed: HEAD, 204, 304). Then
the connection's input is sealed for the rest of that request, so werkzeug's drain finds nothing
and the next request is read whole. Anything else closes the connection as before.
"""

from __future__ import annotations

import io
import threading
from collections.abc import Callable, Iterable
from typing import Any

from werkzeug.wsgi import LimitedStream

# A request body left unread beyond this is not drained to keep a connection: it is closed.
MAX_DRAIN_BYTES = 1 << 20

_request = threading.local()  # the KeepAliveInput of the connection this server thread serves


class KeepAliveInput:
    """A connection's input, as the handler of one request reads it: sealed once the request's
    body is consumed, it reads as empty until the next request starts."""

    def __init__(self, rfile: io.BufferedIOBase) -> None:
        self._rfile = rfile
        self.sealed = False
        self.keep = False  # whether this request's connection may stay open

    def read(self, size: int | None = -1) -> bytes:
        return b"" if self.sealed else self._rfile.read(size)

    def readline(self, size: int = -1) -> bytes:
        return b"" if self.sealed else self._rfile.readline(size)

    def readinto(self, buffer: Any) -> int:
        return 0 if self.sealed else self._rfile.readinto(buffer)

    def __getattr__(self, name: str) -> Any:
        return getattr(self._rfile, name)


def _may_keep(environ: dict[str, Any]) -> bool:
    """An HTTP/1.1 request that does not ask for a close, with no chunked body (whose end is
    werkzeug's to find)."""
    return (
        environ.get("SERVER_PROTOCOL") == "HTTP/1.1"
        and "close" not in environ.get("HTTP_CONNECTION", "").lower()
        and not (environ.get("HTTP_TRANSFER_ENCODING") or environ.get("wsgi.input_terminated"))
    )


def keeping_alive(app: Callable[..., Iterable[bytes]]) -> Callable[..., Iterable[bytes]]:
    """``app``, with its request's body read to its end before the answer, so the connection can
    stay open (see :class:`KeepAliveRequestHandler`)."""

    def wsgi(environ: dict[str, Any], start_response: Callable[..., Any]) -> Iterable[bytes]:
        state: KeepAliveInput | None = getattr(_request, "input", None)
        if state is None or not _may_keep(environ):
            return app(environ, start_response)
        length = environ.get("CONTENT_LENGTH") or "0"
        body = LimitedStream(environ["wsgi.input"], int(length) if length.isdigit() else 0)
        environ["wsgi.input"] = body
        result = app(environ, start_response)
        if body.limit - body.tell() <= MAX_DRAIN_BYTES:  # what the app left unread
            try:
                body.exhaust()
                state.keep = True
            except Exception:  # noqa: BLE001 - the client went away mid-body: the connection closes
                state.keep = False
        state.sealed = True  # werkzeug's drain after the answer must not read the next request
        return result

    return wsgi


class KeepAliveMixin:
    """For a werkzeug ``WSGIRequestHandler``: drops its ``Connection: close`` where
    :func:`keeping_alive` read the body and the answer's length is known."""

    rfile: Any
    command: str
    # An answer is written in pieces (headers, then body); on a connection that stays open, Nagle's
    # algorithm would hold the last piece until the client's delayed ACK, 40 ms later.
    disable_nagle_algorithm = True

    def setup(self) -> None:
        super().setup()  # type: ignore[misc]
        self.rfile = KeepAliveInput(self.rfile)

    def handle_one_request(self) -> None:
        self.rfile.sealed = False
        self.rfile.keep = False
        self._answer_length_known = False
        _request.input = self.rfile
        try:
            super().handle_one_request()  # type: ignore[misc]
        finally:
            _request.input = None

    def send_response(self, code: int, message: str | None = None) -> None:
        self._answer_length_known = code in (204, 304) or self.command == "HEAD"
        super().send_response(code, message)  # type: ignore[misc]

    def send_header(self, keyword: str, value: str) -> None:
        key = keyword.lower()
        if key == "content-length":
            self._answer_length_known = True
        elif key == "connection" and value.lower() == "close" and self.rfile.keep and self._answer_length_known:
            return  # werkzeug's blanket close: this request's connection can stay open
        super().send_header(keyword, value)  # type: ignore[misc]
