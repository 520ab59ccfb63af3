"""gunicorn's threaded worker with the web tier's connection limits (``openstack/gunicorn.conf.py``
names it: ``worker_class = "iraas.web.gthread.BoundedThreadWorker"``).

gthread reads a request's headers, and the WSGI adapter its body, with blocking reads that have no
deadline, and a worker at ``worker_connections`` stops accepting, so that further clients wait in
the listen queue for as long as the first ones hold on. This worker applies the limits chalice's
local server applies (``iraas/web/server.py``), with the same modules:

- the header deadline runs from the moment a thread takes the connection (:meth:`handle`) until the
  request is parsed; gthread's own waits (``DEFAULT_WORKER_DATA_TIMEOUT`` for a first byte, the
  keep-alive poll) hold no thread and end within ``keepalive``;
- each request is admitted on its headers (``iraas/web/admission.py``) before gunicorn sends a
  ``100 Continue`` or the app reads the body; a refusal is answered with ``Connection: close``
  and the connection closed (``iraas/web/connections.py``);
- the body deadline runs until the app has read its body (the body's last byte, or its end, clears
  it), never while the app works on the request;
- a connection over ``IRAAS_WEB_MAX_CONNECTIONS`` (per worker process) is answered 503 at once.
"""

from __future__ import annotations

import errno
from typing import Any

from gunicorn import util
from gunicorn.workers.gthread import ThreadWorker

from iraas.errors import ServiceError
from iraas.web.admission import BUSY, Admission, WebLimits, load_web_limits
from iraas.web.connections import Deadlines, refuse, refuse_at_once
from iraas.web.errors import http_error
from iraas.web.prometheus import count_request


class DeadlineBody:
    """A request's body whose deadline ends with its last byte (or with its end, read short)."""

    def __init__(self, body: Any, length: int | None, on_end: Any) -> None:
        self._body, self._left, self._on_end = body, length, on_end

    def _seen(self, data: bytes, asked: int | None) -> bytes:
        if self._left is not None:
            self._left -= len(data)
        if (self._left is not None and self._left <= 0) or (not data and asked != 0):
            self._on_end()
        return data

    def read(self, size: int | None = None) -> bytes:
        return self._seen(self._body.read(size), size)

    def readline(self, size: int | None = None) -> bytes:
        return self._seen(self._body.readline(size), size)

    def __iter__(self) -> Any:
        return self

    def __next__(self) -> bytes:
        line = self.readline()
        if not line:
            raise StopIteration
        return line

    def __getattr__(self, name: str) -> Any:  # what gunicorn itself asks of its body (``failed``)
        return getattr(self._body, name)


class BoundedThreadWorker(ThreadWorker):
    """gthread with header and body deadlines, admission on the headers and a connection cap."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.limits: WebLimits = load_web_limits()
        self.max_connections = self.limits.max_connections
        # gthread stops accepting at worker_connections; over the cap, accept() answers 503 instead.
        self.worker_connections = self.max_connections + 1
        self.deadlines = Deadlines()

    def init_process(self) -> None:
        self.deadlines.start()
        super().init_process()  # loads the app, then runs

    def _admission(self) -> Admission | None:
        return getattr(self.wsgi, "admission", None)  # the WSGI adapter's (iraas/web/wsgi.py)

    def accept(self, listener: Any) -> None:
        if self.nr_conns < self.max_connections:
            super().accept(listener)
            return
        try:
            client, _ = listener.accept()
        except OSError as exc:
            if exc.errno not in (errno.EAGAIN, errno.ECONNABORTED, errno.EWOULDBLOCK):
                raise
            return
        refuse_at_once(client, http_error(BUSY))

    def handle(self, conn: Any) -> Any:
        sock = conn.sock  # the TCP socket, whatever TLS wraps it in
        conn.iraas_sock = sock
        self.deadlines.set(sock, self.limits.header_timeout_s)
        try:
            return super().handle(conn)
        finally:
            self.deadlines.clear(sock)

    def handle_request(self, req: Any, conn: Any) -> Any:
        sock = conn.iraas_sock
        if not self.deadlines.clear(sock):
            return False  # cut while its headers came in
        conn.sock.settimeout(self.limits.send_timeout_s)
        admission = self._admission()
        if admission is not None:
            headers = {name.lower(): value for name, value in req.headers}
            try:
                admitted = admission.admit(req.method, req.uri, headers)
            except ServiceError as exc:
                error = http_error(exc)
                refuse(conn.sock, error, self.limits)
                # Closed as it is: gthread's graceful close would drain it again, on its main thread.
                conn.close = lambda graceful=False: util.close(conn.sock)
                count_request(admission.route(req.uri), error.status)
                self.log.info("%s %s %s refused on its headers: %s", req.method, req.path, error.status, exc.code)
                return False
            has_body = admitted.length or (admitted.length is None and "transfer-encoding" in headers)
            if has_body and req.body is not None:
                self.deadlines.set(sock, self.limits.body_deadline_s(admitted.length or admitted.limit))
                req.body = DeadlineBody(req.body, admitted.length, lambda: self.deadlines.clear(sock))
        return super().handle_request(req, conn)
