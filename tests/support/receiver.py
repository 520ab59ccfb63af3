"""A webhook receiver on 127.0.0.1 for the callback tests: records every POST and answers each with
the next status of its script (then 200)."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer


@dataclass(frozen=True)
class Delivery:
    path: str
    headers: dict[str, str]
    body: bytes


@dataclass
class Receiver:
    url: str
    statuses: list[int]
    deliveries: list[Delivery] = field(default_factory=list)
    arrived: threading.Condition = field(default_factory=threading.Condition)

    def wait_for(self, count: int, timeout_s: float) -> list[Delivery]:
        """The deliveries once there are ``count`` (AssertionError after ``timeout_s``)."""
        with self.arrived:
            if not self.arrived.wait_for(lambda: len(self.deliveries) >= count, timeout_s):
                raise AssertionError(f"{len(self.deliveries)} of {count} callbacks came within {timeout_s} s")
            return list(self.deliveries)


@contextmanager
def receiving(statuses: list[int] | None = None, location: str | None = None) -> Iterator[Receiver]:
    """A receiver at ``http://127.0.0.1:<port>/hook``; ``location``: sent with a 3xx status."""
    script = list(statuses or [])

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:  # noqa: N802 - http.server's name
            body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
            with receiver.arrived:
                receiver.deliveries.append(Delivery(self.path, {k.lower(): v for k, v in self.headers.items()}, body))
                status = script.pop(0) if script else 200
                receiver.arrived.notify_all()
            self.send_response(status)
            if location and 300 <= status < 400:
                self.send_header("Location", location)
            self.send_header("Content-Length", "0")
            self.end_headers()

        def do_GET(self) -> None:  # noqa: N802 - a followed redirect would arrive here
            self.do_POST()

        def log_message(self, *_args: object) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    receiver = Receiver(f"http://127.0.0.1:{server.server_address[1]}/hook", script)
    thread = threading.Thread(target=server.serve_forever, name="receiver", daemon=True)
    thread.start()
    try:
        yield receiver
    finally:
        server.shutdown()
        server.server_close()
        thread.join()
