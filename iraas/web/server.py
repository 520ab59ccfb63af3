"""Serve ``chalice_web/`` the way ``chalice local`` does, with a listen backlog for bursts and an
orderly stop.

``chalice local`` listens with Python's default backlog of 5, so a burst of 100 clients (what
the course's load generator sends) sees refused or retried connections. This runs the same
chalice local gateway with a deeper backlog. On SIGTERM it stops listening, lets the requests it
holds finish for ``--drain`` seconds, then answers those still waiting with 503 and Retry-After
(``iraas/web/drain.py``), and exits once every request has its answer.
Usage: ``python -m iraas.web.server --port 8000``.
"""

from __future__ import annotations

import argparse
import signal
import threading
import time
from pathlib import Path
from typing import Any

from chalice.local import LocalDevServer, ThreadedHTTPServer

from iraas.config import CHALICE_PROJECT
from iraas.proctitle import set_title, stack_of, web_title
from iraas.web import drain
from iraas.web.project import ProjectRequestHandler, load_chalice_project

DRAIN_S = 4.0  # waiting requests get this long for their answers after SIGTERM
ANSWER_S = 1.5  # then this long to send their 503s before the process exits anyway


class BurstReadyServer(ThreadedHTTPServer):
    request_queue_size = 256

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.in_flight = 0  # requests read and not yet answered (idle keep-alive connections are not)
        self.idle = threading.Condition()

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


class DrainingRequestHandler(ProjectRequestHandler):
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


def make_server(host: str, port: int, project_dir: Path = CHALICE_PROJECT, stage: str = "dev") -> LocalDevServer:
    app, config = load_chalice_project(project_dir, stage)
    return LocalDevServer(app, config, host, port, handler_cls=DrainingRequestHandler, server_cls=BurstReadyServer)


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
