"""iraas/web/wsgi.py: the WSGI adapter translates requests and responses faithfully, for a small
Chalice app (and chalice_web/app.py's thread-safe app)."""

from __future__ import annotations

import io
import json
import threading
from wsgiref.util import setup_testing_defaults

import pytest
from chalice import Chalice, Response

from iraas.web.wsgi import WSGIAdapter
from tests.support.web import load_app_module


class Chunks(io.RawIOBase):
    """A wsgi.input that hands out the body in small pieces, like a de-chunked stream."""

    def __init__(self, data: bytes, piece: int = 7) -> None:
        self._data, self._piece, self.consumed = data, piece, 0

    def read(self, size: int = -1) -> bytes:
        size = self._piece if size < 0 else min(size, self._piece)
        out = self._data[self.consumed : self.consumed + size]
        self.consumed += len(out)
        return out


def echo_app() -> Chalice:
    app = Chalice(app_name="echo")
    app.api.binary_types.append("application/x-thing")

    @app.route("/echo/{name}", methods=["GET", "POST"], content_types=["*/*"])
    def echo(name: str) -> Response:
        request = app.current_request
        return Response(
            body={
                "name": name,
                "method": request.method,
                "query": {k: request.query_params.getlist(k) for k in request.query_params or {}},
                "header": request.headers.get("x-test"),
                "content_type": request.headers.get("content-type"),
                "body_hex": (request.raw_body or b"").hex(),
            },
            headers={"Content-Type": "application/json", "Set-Cookie": ["a=1", "b=2"]},
        )

    @app.route("/blob", methods=["GET"])
    def blob() -> Response:
        return Response(body=bytes(range(256)), headers={"Content-Type": "application/x-thing"})

    @app.route("/fail", methods=["GET"])
    def fail() -> Response:
        return Response(body={"error": {"code": "nope", "message": "no"}}, status_code=418)

    return app


def call(adapter: WSGIAdapter, method: str, path: str, body: bytes = b"", query: str = "",
         headers: dict[str, str] | None = None, stream=None, length: bool = True):
    environ: dict = {"REQUEST_METHOD": method, "PATH_INFO": path, "QUERY_STRING": query}
    setup_testing_defaults(environ)
    environ["wsgi.input"] = stream if stream is not None else io.BytesIO(body)
    if length and stream is None:
        environ["CONTENT_LENGTH"] = str(len(body))
    for name, value in (headers or {}).items():
        key = name.upper().replace("-", "_")
        environ[key if key in ("CONTENT_TYPE", "CONTENT_LENGTH") else f"HTTP_{key}"] = value
    captured: dict = {}

    def start_response(status: str, response_headers: list[tuple[str, str]]) -> None:
        captured["status"], captured["headers"] = status, response_headers

    data = b"".join(adapter(environ, start_response))
    return captured["status"], captured["headers"], data


@pytest.fixture
def adapter() -> WSGIAdapter:
    return WSGIAdapter(echo_app(), max_image_bytes=1000)


def test_a_request_reaches_the_route_with_its_path_query_headers_and_binary_body(adapter):
    body = bytes(range(200))
    status, headers, data = call(
        adapter, "POST", "/echo/caf\u00e9 au lait".encode().decode("latin-1"), body,
        query="tag=a&tag=b&empty=&q=x%20y",
        headers={"Content-Type": "image/png", "X-Test": "yes"},
    )

    assert status == "200 OK"
    echoed = json.loads(data)
    assert echoed == {
        "name": "caf\u00e9 au lait",
        "method": "POST",
        "query": {"tag": ["a", "b"], "empty": [""], "q": ["x y"]},
        "header": "yes",
        "content_type": "image/png",
        "body_hex": body.hex(),
    }
    assert ("Set-Cookie", "a=1") in headers and ("Set-Cookie", "b=2") in headers
    assert ("Content-Length", str(len(data))) in headers


def test_a_chunked_body_without_content_length_is_read_to_the_end(adapter):
    body = b"x" * adapter.max_body_bytes
    stream = Chunks(body)
    _, _, data = call(adapter, "POST", "/echo/n", stream=stream, headers={"Content-Type": "text/plain"})

    assert json.loads(data)["body_hex"] == body.hex()


def test_a_body_over_the_limit_is_refused_before_it_is_read(adapter):
    size = adapter.max_body_bytes + 1  # the image limit plus room for multipart framing, plus one
    stream = Chunks(b"x" * size, piece=size)
    status, headers, data = call(
        adapter, "POST", "/echo/n", stream=stream, headers={"Content-Length": str(size), "Content-Type": "image/png"}
    )

    assert status == "413 Request Entity Too Large"
    assert ("Content-Type", "application/json") in headers
    error = json.loads(data)["error"]
    assert error == {"code": "too_large", "message": f"the request body is {size} bytes; the limit is 1000 bytes (0.0 MiB)"}
    assert stream.consumed == 0


def test_a_chunked_body_over_the_limit_is_refused_after_reading_just_past_it(adapter):
    stream = Chunks(b"x" * 500_000, piece=100)
    status, _, data = call(adapter, "POST", "/echo/n", stream=stream, headers={"Content-Type": "image/png"})

    assert status.startswith("413") and json.loads(data)["error"]["code"] == "too_large"
    assert stream.consumed == adapter.max_body_bytes + 1


def test_a_binary_response_is_sent_as_bytes(adapter):
    status, headers, data = call(adapter, "GET", "/blob", headers={"Accept": "application/x-thing"})

    assert status == "200 OK" and data == bytes(range(256))
    assert ("Content-Type", "application/x-thing") in headers


def test_errors_keep_their_status_and_body(adapter):
    status, _, data = call(adapter, "GET", "/fail")
    assert status == "418 I'm a Teapot" and json.loads(data)["error"]["code"] == "nope"


def test_an_unknown_path_answers_the_project_json_404_as_the_deployed_api_does(adapter):
    status, headers, data = call(adapter, "GET", "/nowhere/at/all")
    assert status == "404 Not Found"
    assert dict(headers)["Content-Type"] == "application/json"
    assert json.loads(data) == {"error": {"code": "not_found", "message": "no such resource: /nowhere/at/all"}}
    status, _, _ = call(adapter, "DELETE", "/blob")  # a known path: the app's own answer
    assert status == "405 Method Not Allowed"


def test_a_bad_content_length_is_a_json_400(adapter):
    status, _, data = call(adapter, "POST", "/echo/n", length=False, headers={"Content-Length": "-5"})
    assert status.startswith("400") and json.loads(data)["error"]["code"] == "bad_request"


def test_concurrent_requests_each_get_their_own_answer(adapter):
    """With the web tier's ThreadSafeChalice, one shared gateway never crosses requests."""
    app = _load_web_app_class()(app_name="threads")

    @app.route("/who/{name}", methods=["POST"], content_types=["*/*"])
    def who(name: str) -> Response:
        threading.Event().wait(0.01)  # widen the window for a crossed request
        return Response(body=f"{name}:{app.current_request.raw_body.decode()}", headers={"Content-Type": "text/plain"})

    threaded = WSGIAdapter(app)
    answers: dict[int, bytes] = {}

    def one(i: int) -> None:
        answers[i] = call(threaded, "POST", f"/who/n{i}", f"b{i}".encode(), headers={"Content-Type": "text/plain"})[2]

    threads = [threading.Thread(target=one, args=(i,)) for i in range(40)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert answers == {i: f"n{i}:b{i}".encode() for i in range(40)}


def _load_web_app_class():
    """ThreadSafeChalice from chalice_web/app.py (importing it touches no AWS: settings load on first request)."""
    return load_app_module("iraas_web_app_for_adapter").ThreadSafeChalice


def test_a_request_without_its_key_is_refused_before_a_byte_of_its_body_is_read():
    from iraas.web.auth import AuthSettings

    keyed = WSGIAdapter(echo_app(), max_image_bytes=1000, auth=AuthSettings(keys=("a-key-of-twenty-chars",)))
    stream = Chunks(b"x" * 500, piece=500)
    status, _, data = call(
        keyed, "POST", "/echo/n", stream=stream, headers={"Content-Length": "500", "Content-Type": "image/png"}
    )

    assert status.startswith("401") and json.loads(data)["error"]["code"] == "unauthorized"
    assert stream.consumed == 0


def test_a_body_that_ends_before_its_content_length_never_reaches_the_app(adapter):
    stream = Chunks(b"x" * 10)
    status, _, data = call(
        adapter, "POST", "/echo/n", stream=stream, headers={"Content-Length": "500", "Content-Type": "image/png"}
    )

    assert status.startswith("400") and "ended after 10 of its 500 bytes" in json.loads(data)["error"]["message"]
