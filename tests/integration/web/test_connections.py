"""Both long-running web servers bound what a client may send and hold (iraas/web/connections.py,
iraas/web/admission.py): `python -m iraas.web.server` (chalice's local server, `iraas up`'s default)
and gunicorn with openstack/gunicorn.conf.py (`iraas up --web gunicorn`, OpenStack), each a real
process on loopback with an API key set, probed with raw sockets.

Measured in bytes, connections and answers: the server's RSS, its open sockets, what each client
socket reads. The deadlines are set short here (IRAAS_WEB_HEADER_TIMEOUT_S and friends), so that a
held connection is let go quickly; no test asserts how long anything took.
"""

from __future__ import annotations

import contextlib
import json
import os
import select
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import pytest

from iraas.config import MIB, REPO_ROOT
from iraas.local.motoserver import free_port
from iraas.web.gunicorn import gunicorn_command

KEY = "k" * 20 + "-connections-test"
MAX_CONNECTIONS = 48
HEADER_TIMEOUT_S = 2.0
SETTLE_S = 30.0  # the most a check waits for the server to let its connections go (never asserted)
HUGE = 200 * MIB  # what the attacker's upload announces


@dataclass
class Server:
    kind: str
    port: int
    process: subprocess.Popen
    log: Path
    at_rest: int = 0  # the serving process's sockets with no client connected

    @property
    def pid(self) -> int:
        """The process that holds the connections: gunicorn's one worker, or the server itself."""
        if self.kind == "chalice":
            return self.process.pid
        children = [
            int(stat.parent.name) for stat in Path("/proc").glob("[0-9]*/stat")
            if _ppid(stat) == self.process.pid
        ]
        assert len(children) == 1, children
        return children[0]

    def rss_bytes(self) -> int:
        for line in Path(f"/proc/{self.pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) * 1024
        raise AssertionError("no VmRSS")

    def threads(self) -> int:
        return len(os.listdir(f"/proc/{self.pid}/task"))

    def open_connections(self) -> int:
        """Sockets the serving process holds beyond its listening socket and its own plumbing."""
        count = 0
        for fd in os.listdir(f"/proc/{self.pid}/fd"):
            with contextlib.suppress(FileNotFoundError):
                count += os.readlink(f"/proc/{self.pid}/fd/{fd}").startswith("socket:")
        return count

    def connect(self) -> socket.socket:
        return socket.create_connection(("127.0.0.1", self.port), timeout=SETTLE_S)


def _ppid(stat: Path) -> int:
    try:
        return int(stat.read_text().rsplit(")", 1)[1].split()[1])
    except (OSError, IndexError, ValueError):
        return 0


def server_env(home: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("AWS_", "IRAAS_"))}
    env.update({
        "IRAAS_HOME": str(home),
        # Names only: no request in these tests reaches AWS (they are refused, cut, or ask /openapi.json).
        "IRAAS_IMAGE_INPUT_BUCKET": "in", "IRAAS_IMAGE_OUTPUT_BUCKET": "out",
        "IRAAS_REQUEST_QUEUE_URL": "http://127.0.0.1:9/q", "IRAAS_RESPONSE_QUEUE_URL": "http://127.0.0.1:9/r",
        "IRAAS_API_KEY": KEY,
        "IRAAS_WEB_HEADER_TIMEOUT_S": str(HEADER_TIMEOUT_S),
        "IRAAS_WEB_BODY_TIMEOUT_S": str(HEADER_TIMEOUT_S),
        "IRAAS_WEB_BODY_MIN_BYTES_PER_S": str(512 * MIB),  # a 1 MB body's deadline is the base one
        "IRAAS_WEB_MAX_CONNECTIONS": str(MAX_CONNECTIONS),
        "IRAAS_WEB_PROCESSES": "1",  # gunicorn: one worker process holds them all (the cap is per process)
        "AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing", "AWS_DEFAULT_REGION": "us-east-1",
    })
    return env


def ask(port: int, request: bytes) -> bytes:
    with socket.create_connection(("127.0.0.1", port), timeout=SETTLE_S) as sock:
        sock.sendall(request)
        return read_all(sock)


def read_all(sock: socket.socket) -> bytes:
    """What the server sends until it closes the connection (a reset ends it too)."""
    data = b""
    try:
        while chunk := sock.recv(65536):
            data += chunk
    except ConnectionResetError:
        pass
    return data


def answer(port: int) -> bytes:
    return ask(port, b"GET /openapi.json HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")


@pytest.fixture(scope="module", params=["chalice", "gunicorn"])
def server(request, tmp_path_factory) -> Iterator[Server]:
    home = tmp_path_factory.mktemp(f"{request.param}-home")
    port = free_port()
    if request.param == "chalice":
        command = [sys.executable, "-m", "iraas.web.server", "--host", "127.0.0.1", "--port", str(port)]
    else:
        command = gunicorn_command("127.0.0.1", port)
    log = home / "server.log"
    with open(log, "wb") as out:
        process = subprocess.Popen(command, cwd=REPO_ROOT, env=server_env(home), stdout=out, stderr=subprocess.STDOUT)
    served = Server(request.param, port, process, log)
    try:
        deadline = time.monotonic() + 60
        while True:
            assert process.poll() is None, log.read_text()
            try:
                if answer(port).startswith(b"HTTP/1.1 200"):
                    break
            except OSError:
                pass
            assert time.monotonic() < deadline, log.read_text()
            time.sleep(0.2)
        time.sleep(0.5)  # the last probe's connection closed
        served.at_rest = served.open_connections()
        yield served
    finally:
        process.terminate()
        process.wait(timeout=20)


def status_and_body(response: bytes) -> tuple[int, dict[str, str], dict]:
    head, _, body = response.partition(b"\r\n\r\n")
    lines = head.decode("latin-1").split("\r\n")
    headers = {name.lower(): value.strip() for name, _, value in (line.partition(":") for line in lines[1:])}
    return int(lines[0].split()[1]), headers, json.loads(body)


def upload(port: int, headers: str) -> bytes:
    """POST /v1/images announcing HUGE bytes and sending them until the server answers or closes."""
    sock = socket.create_connection(("127.0.0.1", port), timeout=SETTLE_S)
    sock.sendall(
        f"POST /v1/images HTTP/1.1\r\nHost: x\r\nContent-Type: image/jpeg\r\nContent-Length: {HUGE}\r\n{headers}\r\n"
        .encode()
    )
    chunk, sent = b"\xff" * (256 * 1024), 0
    try:
        while sent < HUGE:
            readable, writable, _ = select.select([sock], [sock], [], SETTLE_S)
            if readable:
                break  # the answer came (or the end)
            sent += sock.send(chunk[: HUGE - sent])
    except (BrokenPipeError, ConnectionResetError):
        pass
    response = read_all(sock)
    sock.close()
    return response


def settle(server: Server) -> int:
    """Wait (a bounded while) for the server to hold no more sockets than at rest; how many it holds."""
    deadline = time.monotonic() + SETTLE_S
    while server.open_connections() > server.at_rest and time.monotonic() < deadline:
        time.sleep(0.1)
    return server.open_connections()


@pytest.mark.parametrize(("key", "status", "code"), [(None, 401, "unauthorized"), ("w" * 20, 403, "forbidden"),
                                                      (KEY, 413, "too_large")])
def test_a_200_mb_upload_is_refused_on_its_headers_and_never_read_into_memory(server, key, status, code):
    baseline = settle(server)
    rss = server.rss_bytes()

    with ThreadPoolExecutor(4) as pool:  # four at once, as the attacker did
        answers = list(pool.map(lambda _: upload(server.port, f"x-api-key: {key}\r\n" if key else ""), range(4)))

    for response in answers:
        got, headers, body = status_and_body(response)
        assert (got, body["error"]["code"]) == (status, code)
        assert headers["connection"] == "close" and headers["content-type"] == "application/json"
    assert server.rss_bytes() - rss < 50 * MIB
    assert settle(server) == baseline  # none of them is held
    assert answer(server.port).startswith(b"HTTP/1.1 200")


def test_a_refused_upload_with_expect_100_continue_gets_its_refusal_instead_of_a_continue(server):
    with server.connect() as sock:
        sock.sendall(
            f"POST /v1/images HTTP/1.1\r\nHost: x\r\nContent-Length: {HUGE}\r\nExpect: 100-continue\r\n\r\n".encode()
        )
        response = read_all(sock)

    assert response.startswith(b"HTTP/1.1 401")
    assert b"100 Continue" not in response


def test_a_route_that_needs_no_key_still_answers_without_one(server):
    response = answer(server.port)

    status, headers, body = status_and_body(response)
    assert status == 200 and body["openapi"].startswith("3.")


def hold_silent(sock: socket.socket) -> None:
    pass


def hold_announced_body(sock: socket.socket) -> None:
    sock.sendall(
        f"POST /v1/images HTTP/1.1\r\nHost: x\r\nx-api-key: {KEY}\r\nContent-Type: image/jpeg\r\n"
        f"Content-Length: {MIB}\r\n\r\n".encode()
    )


def hold_trickled_headers(sock: socket.socket) -> None:
    sock.sendall(b"GET /openapi.json HTTP/1.1\r\nHost: x\r\n")  # and then a header line, one byte at a time


@pytest.mark.parametrize("hold", [hold_silent, hold_announced_body, hold_trickled_headers])
def test_twenty_connections_that_hold_on_are_let_go(server, hold):
    baseline_sockets, baseline_threads = settle(server), server.threads()
    sockets = [server.connect() for _ in range(20)]
    for sock in sockets:
        hold(sock)
    stop = threading.Event()

    def trickle() -> None:  # one byte per connection, over and over: each read alone is quick
        while not stop.is_set():
            for sock in sockets:
                with contextlib.suppress(OSError):
                    sock.send(b"X")
            stop.wait(HEADER_TIMEOUT_S / 4)

    trickler = threading.Thread(target=trickle, daemon=True)
    if hold is hold_trickled_headers:
        trickler.start()
    try:
        answers = [read_all(sock) for sock in sockets]  # each ends when the server lets it go
    finally:
        stop.set()
        for sock in sockets:
            sock.close()

    assert all(not a.startswith(b"HTTP/1.1 2") for a in answers)  # never served, however long it trickled
    assert settle(server) == baseline_sockets
    if server.kind == "chalice":  # a thread per connection: all of them ended (gunicorn's pool stays)
        deadline = time.monotonic() + SETTLE_S
        while server.threads() > baseline_threads and time.monotonic() < deadline:
            time.sleep(0.1)
        assert server.threads() == baseline_threads
    assert answer(server.port).startswith(b"HTTP/1.1 200")


def test_a_connection_over_the_cap_is_answered_503_at_once_and_the_rest_are_served_after(server):
    baseline = settle(server)
    held = [server.connect() for _ in range(MAX_CONNECTIONS)]
    try:
        deadline = time.monotonic() + SETTLE_S  # until the server has accepted them all
        while server.open_connections() < baseline + MAX_CONNECTIONS and time.monotonic() < deadline:
            time.sleep(0.02)
        response = answer(server.port)
    finally:
        for sock in held:
            sock.close()

    status, headers, body = status_and_body(response)
    assert (status, body["error"]["code"]) == (503, "busy")
    assert headers["retry-after"] == "1" and headers["connection"] == "close"
    assert settle(server) == baseline
    assert answer(server.port).startswith(b"HTTP/1.1 200")


def test_keep_alive_still_serves_several_requests_on_one_connection(server):
    with server.connect() as sock:
        for _ in range(3):
            sock.sendall(b"GET /openapi.json HTTP/1.1\r\nHost: x\r\n\r\n")
            head = b""
            while b"\r\n\r\n" not in head:
                head += sock.recv(1)
            length = int(next(line.split(b":")[1] for line in head.split(b"\r\n") if line.lower().startswith(b"content-length")))
            body = b""
            while len(body) < length:
                body += sock.recv(length - len(body))
            assert head.startswith(b"HTTP/1.1 200") and json.loads(body)["openapi"]


def test_a_client_that_sends_its_whole_body_before_reading_still_reads_its_refusal(server):
    """requests (urllib3) writes the body to the end, then reads: the refusal must still be there."""
    import requests

    response = requests.post(
        f"http://127.0.0.1:{server.port}/v1/images", data=b"\0" * (12 * MIB), timeout=SETTLE_S,
        headers={"Content-Type": "image/png", "x-api-key": KEY},
    )

    assert response.status_code == 413 and response.json()["error"]["code"] == "too_large"
    assert response.headers["Connection"] == "close"
