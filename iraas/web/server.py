"""Serve ``chalice_web/`` the way ``chalice local`` does, with a listen backlog for bursts, bounds on
what a client may send and hold, and an orderly stop.

``chalice local`` listens with Python's default backlog of 5, so a burst of 100 clients (what
the course's load generator sends) sees refused or retried connections. This runs the same
chalice local gateway with a deeper backlog. On SIGTERM it stops listening, lets the requests it
holds finish for ``--drain`` seconds, then answers those still waiting with 503 and Retry-After
(``iraas/web/drain.py``), and exits once every request has its answer.

chalice's handler reads a whole body before anything looks at it, and waits for a client for ever.
Here each request is admitted on its headers first (``iraas/web/admission.py``: the API key, the
route's body limit), so a refusal is sent before the body is read; headers and body are read under
total deadlines, and connections over ``IRAAS_WEB_MAX_CONNECTIONS`` get a 503 at once
(``iraas/web/connections.py``). The same limits as gunicorn's worker (``iraas/web/gthread.py``).
Usage: ``python -m iraas.web.server --port 8000``.
"""

from __future__ import annotations

import argparse
import signal
import threading
import time
from pathlib import Path
from typing import Any

from chalice.local import ChaliceRequestHandler, LocalDevServer, ThreadedHTTPServer

from iraas.config import CHALICE_PROJECT
from iraas.errors import ServiceError
from iraas.media.uploads import load_upload_limits
from iraas.proctitle import set_title, stack_of, web_title
from iraas.web import drain
from iraas.web.admission import BUSY, Admission, Admitted, WebLimits, load_web_limits
from iraas.web.auth import load_auth_settings
from iraas.web.connections import Deadlines, refuse, refuse_at_once
from iraas.web.errors import http_error
from iraas.web.project import ProjectRequestHandler, load_chalice_project
from iraas.web.prometheus import count_request

DRAIN_S = 4.0  # waiting requests get this long for their answers after SIGTERM
ANSWER_S = 1.5  # then this long to send their 503s before the process exits anyway


class BurstReadyServer(ThreadedHTTPServer):
    """A thread per connection, up to ``limits.max_connections``; one more is answered 503 at once."""

    request_queue_size = 256

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.in_flight = 0  # requests read and not yet answered (idle keep-alive connections are not)
        self.idle = threading.Condition()
        self.limits = WebLimits()
        self.admission: Admission | None = None  # None: every request is read as chalice reads it
        self.deadlines = Deadlines()
        self.connections = 0  # open connections, each with its thread
        self._connections_lock = threading.Lock()

    def bound(self, limits: WebLimits, admission: Admission) -> None:
        """Take these limits (before serving)."""
        self.limits, self.admission = limits, admission
        self.deadlines.start()

    def process_request(self, request: Any, client_address: Any) -> None:
        with self._connections_lock:
            full = self.connections >= self.limits.max_connections
            if not full:
                self.connections += 1
        if full:
            refuse_at_once(request, http_error(BUSY))
            return
        try:
            super().process_request(request, client_address)
        except BaseException:  # no thread started: the connection is not held
            self._release_connection()
            raise

    def process_request_thread(self, request: Any, client_address: Any) -> None:
        try:
            super().process_request_thread(request, client_address)
        finally:
            self._release_connection()

    def _release_connection(self) -> None:
        with self._connections_lock:
            self.connections -= 1

    def wait_idle(self, timeout_s: float) -> bool:
        """Wait until no request is in flight; False if some still are after ``timeout_s``."""
        deadline = time.monotonic() + timeout_s
        with self.idle:
            while self.in_flight:
                left = deadline - time.monotonic()
                if left <= 0:
                    return False
                self.idle.wait(left)
        return True


class ConnectionCut(Exception):
    """The client went, or missed its deadline, before its request was in: nobody to answer."""


class BoundedRequestHandler(ProjectRequestHandler):
    """chalice's handler, admitting each request on its headers and reading under deadlines.

    The header deadline runs from the moment the connection waits for a request to the end of its
    headers (:meth:`handle_one_request`); the request is then admitted or refused (before a
    ``100 Continue`` too); the body deadline runs while the body is read (:meth:`_parse_payload`);
    the app's own work has none.
    """

    server: BurstReadyServer
    _admitted: Admitted | None

    def setup(self) -> None:
        self.timeout = self.server.limits.send_timeout_s  # each send (reads end by their deadlines first)
        super().setup()

    def handle(self) -> None:
        try:
            super().handle()
        except (ConnectionError, TimeoutError):  # the client went, or does not read its answer
            self.close_connection = True

    def handle_one_request(self) -> None:
        self._admitted = None
        self.server.deadlines.set(self.connection, self.server.limits.header_timeout_s)
        try:
            super().handle_one_request()
        finally:
            self.server.deadlines.clear(self.connection)

    def handle_expect_100(self) -> bool:
        return self._admit() and bool(super().handle_expect_100())

    def parse_request(self) -> bool:
        if not super().parse_request():
            return False
        return self._admitted is not None or self._admit()

    def _admit(self) -> bool:
        """Admit the request whose headers are in, or answer its refusal; False: no more on this connection."""
        deadlines, limits = self.server.deadlines, self.server.limits
        if not deadlines.clear(self.connection):  # cut in the middle of its headers
            self.close_connection = True
            return False
        admission = self.server.admission
        if admission is None:
            self._admitted = Admitted(None, int(self.headers.get("content-length") or 0), 0, 0)
            return True
        try:
            self._admitted = admission.admit(self.command, self.path, self.headers, chunked_ok=False)
        except ServiceError as exc:
            error = http_error(exc)
            self.close_connection = True
            refuse(self.connection, error, limits)
            self.log_request(error.status)
            count_request(admission.route(self.path), error.status)
            return False
        if self._admitted.length:
            deadlines.set(self.connection, limits.body_deadline_s(self._admitted.length))
        return True

    def _parse_payload(self) -> tuple[dict, bytes | None]:
        length = self._admitted.length if self._admitted is not None else 0
        body = None
        if length:
            body = self.rfile.read(length)
            if not self.server.deadlines.clear(self.connection) or len(body) < length:
                raise ConnectionCut()
        return dict(self.headers), body

    def _handle_admitted(self) -> None:
        try:
            ChaliceRequestHandler._generic_handle(self)
        except ConnectionCut:
            self.close_connection = True

    do_GET = do_PUT = do_POST = do_HEAD = do_DELETE = do_PATCH = do_OPTIONS = _handle_admitted


class DrainingRequestHandler(BoundedRequestHandler):
    """Counts the requests in flight; once the server is stopping, closes each connection after
    its answer (no keep-alive), so that nothing new arrives on it."""

    server: BurstReadyServer

    def parse_request(self) -> bool:
        parsed = bool(super().parse_request())
        if parsed:
            with self.server.idle:
                self.server.in_flight += 1
            self._counted = True
        return parsed

    def handle_one_request(self) -> None:
        self._counted = False
        try:
            super().handle_one_request()
        finally:
            if drain.stopping():
                self.close_connection = True
            if self._counted:
                with self.server.idle:
                    self.server.in_flight -= 1
                    self.server.idle.notify_all()


def make_server(
    host: str, port: int, project_dir: Path = CHALICE_PROJECT, stage: str = "dev", limits: WebLimits | None = None
) -> LocalDevServer:
    """The server, its limits read (``IRAAS_WEB_*``, the upload limits, ``IRAAS_API_KEY``) and checked."""
    limits = load_web_limits() if limits is None else limits
    app, config = load_chalice_project(project_dir, stage)
    server = LocalDevServer(app, config, host, port, handler_cls=DrainingRequestHandler, server_cls=BurstReadyServer)
    server.server.bound(limits, Admission(app, load_auth_settings(), load_upload_limits()))
    return server


def serve_until_stopped(server: LocalDevServer, drain_s: float = DRAIN_S) -> bool:
    """Serve until SIGTERM or SIGINT, then stop in order; True if every request was answered."""
    stop = threading.Event()
    for signum in (signal.SIGTERM, signal.SIGINT):
        signal.signal(signum, lambda *_: stop.set())
    httpd: BurstReadyServer = server.server
    serving = threading.Thread(target=server.serve_forever, name="serve", daemon=True)
    serving.start()
    while not stop.wait(1.0) and serving.is_alive():
        pass
    drain.begin(drain_s)  # new requests on open connections get a 503 from here on
    httpd.shutdown()  # no new connections: the accept loop ends...
    httpd.socket.close()  # ...and the port is closed, so clients are refused, not left hanging
    return httpd.wait_idle(drain_s + ANSWER_S)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8000)
    parser.add_argument("--project-dir", type=Path, default=CHALICE_PROJECT)
    parser.add_argument("--drain", type=float, default=DRAIN_S, help="seconds waiting requests get after SIGTERM")
    args = parser.parse_args(argv)
    set_title(web_title(f"{args.host}:{args.port}"), stack_of())
    serve_until_stopped(make_server(args.host, args.port, args.project_dir), args.drain)


if __name__ == "__main__":
    main()
