"""`iraas classify --remote URL` (iraas/cli/classify/remote.py): the client against a stand-in for the
HTTP API (a local server that answers like the web tier: 200 with a label, 400 with a JSON error,
202 then a GET)."""

from __future__ import annotations

import io
import json
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

import pytest

from harness.embedded import free_port
from iraas.cli.classify import remote
from iraas.cli.classify.report import JsonLines
from iraas.errors import UsageError


class FakeApi(BaseHTTPRequestHandler):
    """Bodies ``IMG:<label>`` are answered at once, ``SLOW:<label>`` with a 202 and then on the
    second GET, anything else as not an image. ``barrier``, when set, holds each answer until that
    many requests are in flight together."""

    barrier: threading.Barrier | None = None
    seen: list[dict] = []
    polls: dict[str, int] = {}

    def log_message(self, *args: object) -> None:  # quiet
        pass

    def _json(self, status: int, body: dict) -> None:
        data = json.dumps(body).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def do_GET(self) -> None:
        path = urlsplit(self.path).path
        if path == "/v1/healthz":
            return self._json(200, {"status": "ok"})
        request_id = path.rsplit("/", 1)[-1]
        self.polls[request_id] = self.polls.get(request_id, 0) + 1
        if self.polls[request_id] < 2:
            return self._json(202, {"id": request_id, "status": "queued"})
        return self._json(200, self._done(request_id, request_id.split("-", 1)[1]))

    def do_POST(self) -> None:
        url = urlsplit(self.path)
        query = {k: v[0] for k, v in parse_qs(url.query).items()}
        body = self.rfile.read(int(self.headers["Content-Length"]))
        self.seen.append({"path": url.path, "query": query, "headers": dict(self.headers)})
        if self.barrier is not None:
            self.barrier.wait()
        kind, _, label = body.decode(errors="replace").partition(":")
        if kind == "IMG":
            return self._json(200, self._done("id-" + label, label))
        if kind == "SLOW":
            return self._json(202, {"id": "slow-" + label, "status": "queued"})
        self._json(400, {"error": {"code": "not_an_image", "message": "not an image, or an image format we cannot read"}})

    @staticmethod
    def _done(request_id: str, label: str) -> dict:
        top5 = [{"label": label, "wnid": "n00000001", "confidence": 0.5}]
        return {"id": request_id, "status": "done", "label": label, "wnid": "n00000001", "confidence": 0.5, "top5": top5}


@pytest.fixture
def api() -> Iterator[str]:
    FakeApi.barrier, FakeApi.seen, FakeApi.polls = None, [], {}
    server = ThreadingHTTPServer(("127.0.0.1", 0), FakeApi)
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()
    server.server_close()


def files(tmp_path: Path, bodies: dict[str, bytes]) -> list[str]:
    paths = []
    for name, body in bodies.items():
        (tmp_path / name).write_bytes(body)
        paths.append(str(tmp_path / name))
    return paths


class Tty(io.StringIO):
    def isatty(self) -> bool:
        return True


def test_results_come_back_in_input_order_with_failures_and_late_answers(api: str, tmp_path: Path) -> None:
    paths = files(tmp_path, {"a.png": b"IMG:cat", "b.png": b"junk", "c.jpg": b"SLOW:owl", "d.webp": b"IMG:dog"})
    out, err = io.StringIO(), io.StringIO()
    status = remote.run(api, paths, JsonLines(out, failures=True), err, concurrency=4)
    assert status == 1
    rows = [json.loads(line) for line in out.getvalue().splitlines()]
    assert [r["path"] for r in rows] == paths
    assert [r.get("label") for r in rows] == ["cat", None, "owl", "dog"]
    assert rows[1]["error"] == "not an image, or an image format we cannot read"
    lines = err.getvalue().splitlines()
    assert lines[0] == f"{paths[1]}: not an image, or an image format we cannot read"
    assert lines[1].startswith("classified 3 of 4 images in ") and lines[1].endswith("; 1 failed")
    assert lines[2].startswith("latency p50 ") and lines[2].endswith("(4 requests at a time)")
    assert "\r" not in err.getvalue()  # not a terminal: no progress line


def test_each_file_is_sent_raw_with_its_name_type_and_an_idempotency_key(api: str, tmp_path: Path) -> None:
    paths = files(tmp_path, {"cat.jpg": b"IMG:cat", "dog.png": b"IMG:dog"})
    remote.run(api, paths, JsonLines(io.StringIO(), failures=True), io.StringIO(), concurrency=1)
    assert [s["query"]["name"] for s in FakeApi.seen] == ["cat.jpg", "dog.png"]
    assert {s["path"] for s in FakeApi.seen} == {"/v1/images"}
    assert all(float(s["query"]["wait"]) > 0 for s in FakeApi.seen)
    assert [s["headers"]["Content-Type"] for s in FakeApi.seen] == ["image/jpeg", "image/png"]
    keys = [s["headers"]["Idempotency-Key"] for s in FakeApi.seen]
    assert len(set(keys)) == 2


def test_files_are_sent_many_at_a_time(api: str, tmp_path: Path) -> None:
    # Each answer waits until four requests are in flight together: sent one by one, none would come.
    FakeApi.barrier = threading.Barrier(4, timeout=10)
    paths = files(tmp_path, {f"{n}.png": f"IMG:label{n}".encode() for n in range(8)})
    out = io.StringIO()
    assert remote.run(api, paths, JsonLines(out, failures=True), io.StringIO(), concurrency=4) == 0
    assert [json.loads(line)["label"] for line in out.getvalue().splitlines()] == [f"label{n}" for n in range(8)]


def test_a_terminal_gets_a_progress_line_that_ends_before_the_summary(api: str, tmp_path: Path) -> None:
    paths = files(tmp_path, {"a.png": b"IMG:cat", "b.png": b"IMG:dog"})
    err = Tty()
    remote.run(api, paths, JsonLines(io.StringIO(), failures=True), err)
    text = err.getvalue()
    assert "\rclassified 2/2 [####################] 100%" in text
    assert "\nclassified 2 images in " in text


def test_a_file_that_cannot_be_read_is_a_failure_of_its_own(api: str, tmp_path: Path) -> None:
    paths = files(tmp_path, {"a.png": b"IMG:cat"}) + [str(tmp_path / "gone.png")]
    out = io.StringIO()
    assert remote.run(api, paths, JsonLines(out, failures=True), io.StringIO()) == 1
    assert "No such file" in json.loads(out.getvalue().splitlines()[1])["error"]


def test_no_service_at_the_url_is_one_message_before_any_file_is_sent(tmp_path: Path) -> None:
    url = f"http://127.0.0.1:{free_port()}"
    with pytest.raises(UsageError) as error:
        remote.run(url, files(tmp_path, {"a.png": b"IMG:cat"}), JsonLines(io.StringIO(), failures=True), io.StringIO())
    message = str(error.value)
    assert message.startswith(f"no IRaaS service at {url}: ") and "\n" not in message
    assert "Connection refused" in message


def test_every_request_carries_the_api_key_of_iraas_api_key(api: str, tmp_path: Path, monkeypatch) -> None:
    monkeypatch.setenv("IRAAS_API_KEY", "new-key-0123456789abcdef,old-key-0123456789abcdef")
    paths = files(tmp_path, {"cat.jpg": b"IMG:cat", "owl.png": b"SLOW:owl"})
    assert remote.run(api, paths, JsonLines(io.StringIO(), failures=True), io.StringIO()) == 0
    assert [s["headers"].get("x-api-key") for s in FakeApi.seen] == ["new-key-0123456789abcdef"] * 2  # the first


def test_without_iraas_api_key_no_key_is_sent(api: str, tmp_path: Path, monkeypatch) -> None:
    monkeypatch.delenv("IRAAS_API_KEY", raising=False)
    remote.run(api, files(tmp_path, {"cat.jpg": b"IMG:cat"}), JsonLines(io.StringIO(), failures=True), io.StringIO())
    assert "x-api-key" not in FakeApi.seen[0]["headers"]
