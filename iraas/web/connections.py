"""What both web servers do to a connection that is refused, slow or one too many.

Both serve each connection from a thread that reads it with blocking calls (chalice's local server,
``iraas/web/server.py``; gunicorn's gthread worker, ``iraas/web/gthread.py``). A per-read socket
timeout cannot end a client that trickles a byte every few seconds, so a deadline is a total one:

- :class:`Deadlines`: one thread per web process holds each connection's deadline while its
  headers or body are read, and when one passes, shuts that socket down (``shutdown(SHUT_RDWR)``).
  The reader's blocked ``recv`` returns at once with end-of-file, whichever thread is in it, and
  the server drops the connection unanswered; :meth:`Deadlines.clear` tells it the deadline was
  missed (a short read may look like a whole one). While the app works on a request (a ``?wait=``
  long poll) no deadline is set: the deadlines bound what the client sends, not the answer.
- :func:`refuse`: a request refused on its headers (``iraas/web/admission.py``) gets its JSON answer
  with ``Connection: close`` at once; then at most ``discard_bytes`` of its body, for at most
  ``discard_s``, are read and dropped (so that the client reads the answer rather than a reset),
  and the connection is closed. Nothing of the body is kept.
- :func:`refuse_at_once`: a connection over ``max_connections`` is answered 503 with Retry-After by
  the accepting thread itself, without a thread of its own, and closed.
"""

from __future__ import annotations

import contextlib
import http
import json
import logging
import socket
import threading
import time

from iraas.web.admission import WebLimits
from iraas.web.errors import PRIVATE_HEADERS, HttpError

log = logging.getLogger(__name__)

_DISCARD_CHUNK = 64 * 1024
_AT_ONCE_READS = 4  # reads of what a connection over the cap had sent before it is closed


class Deadlines:
    """Sockets with a deadline, and the thread that shuts each down once its deadline passes."""

    def __init__(self) -> None:
        self._due: dict[int, tuple[float, socket.socket]] = {}  # by file descriptor
        self._missed: set[int] = set()
        self._changed = threading.Condition()
        self._thread: threading.Thread | None = None
        self.cut = 0  # connections cut so far

    def start(self) -> None:
        """Start the watching thread (once; before the server takes connections)."""
        with self._changed:
            if self._thread is None:
                self._thread = threading.Thread(target=self._watch, name="iraas-deadlines", daemon=True)
                self._thread.start()

    def set(self, sock: socket.socket, seconds: float) -> None:
        """Cut ``sock`` in ``seconds`` unless :meth:`clear` comes first; replaces its earlier deadline."""
        with self._changed:
            fd = sock.fileno()
            self._missed.discard(fd)
            self._due[fd] = (time.monotonic() + seconds, sock)
            self._changed.notify()

    def clear(self, sock: socket.socket) -> bool:
        """No deadline for ``sock`` from now; False if its last one passed and it was cut."""
        with self._changed:
            fd = sock.fileno()
            self._due.pop(fd, None)
            if fd in self._missed:
                self._missed.discard(fd)
                return False
            return True

    def _watch(self) -> None:
        with self._changed:
            while True:
                now = time.monotonic()
                for fd in [fd for fd, (due, _) in self._due.items() if due <= now]:
                    _, sock = self._due.pop(fd)
                    self._missed.add(fd)
                    self.cut += 1
                    with contextlib.suppress(OSError):  # OSError: the client went first
                        sock.shutdown(socket.SHUT_RDWR)  # the blocked reader sees end-of-file
                soonest = min((due for due, _ in self._due.values()), default=None)
                self._changed.wait(None if soonest is None else max(0.0, soonest - now))


def response_bytes(error: HttpError) -> bytes:
    """``error`` as a whole HTTP/1.1 response that closes its connection (JSON, as the app's errors)."""
    body = json.dumps(error.body, separators=(",", ":")).encode()
    try:
        phrase = http.HTTPStatus(error.status).phrase
    except ValueError:
        phrase = "Error"
    headers = {
        "Content-Type": "application/json",
        "Content-Length": str(len(body)),
        **error.headers,
        **PRIVATE_HEADERS,
        "Connection": "close",
    }
    head = f"HTTP/1.1 {error.status} {phrase}\r\n" + "".join(f"{k}: {v}\r\n" for k, v in headers.items())
    return (head + "\r\n").encode("latin-1") + body


def discard(sock: socket.socket, limits: WebLimits) -> int:
    """After a refusal has been sent: end the sending side, then read and drop what the client still
    sends (``discard_bytes`` at most, ``discard_s`` at most); the caller closes the socket next (a
    reset, if the client is still sending: it has its answer). The bytes dropped."""
    try:
        sock.shutdown(socket.SHUT_WR)
    except OSError:
        return 0
    dropped = 0
    buffer = bytearray(_DISCARD_CHUNK)
    deadline = time.monotonic() + limits.discard_s
    while dropped < limits.discard_bytes:
        left = deadline - time.monotonic()
        if left <= 0:
            break
        try:
            sock.settimeout(left)
            n = sock.recv_into(buffer, min(_DISCARD_CHUNK, limits.discard_bytes - dropped))
        except OSError:
            break
        if not n:
            break
        dropped += n
    return dropped


def refuse(sock: socket.socket, error: HttpError, limits: WebLimits) -> None:
    """Answer ``error`` and :func:`discard` what follows; the caller closes the socket at once."""
    try:
        sock.settimeout(limits.send_timeout_s)
        sock.sendall(response_bytes(error))
    except OSError:
        pass
    discard(sock, limits)


def refuse_at_once(sock: socket.socket, error: HttpError) -> None:
    """Answer a new connection without a thread of its own: one non-blocking send of ``error``
    (a few hundred bytes fit a new connection's empty send buffer), then close it."""
    try:
        sock.setblocking(False)
        sock.send(response_bytes(error))
        try:  # what the client sent already: read, so that closing sends a FIN rather than a reset
            for _ in range(_AT_ONCE_READS):
                if not sock.recv(_DISCARD_CHUNK):
                    break
        except OSError:  # nothing more there (it would block)
            pass
        sock.shutdown(socket.SHUT_WR)
    except OSError:
        pass
    finally:
        sock.close()
