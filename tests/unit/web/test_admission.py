"""iraas/web/admission.py: a request is admitted or refused on its headers alone, with the app's own
key check and each route's body limit; the connection limits are read once, each from its variable."""

from __future__ import annotations

import json

import pytest
from chalice import Chalice

from iraas.errors import ConfigError, InvalidRequest, TooLarge
from iraas.media.uploads import MULTIPART_HEADROOM, UploadLimits
from iraas.web.admission import BUSY, Admission, WebLimits, content_length, load_web_limits
from iraas.web.auth import AuthSettings
from iraas.web.connections import response_bytes
from iraas.web.errors import Forbidden, LengthRequired, Unauthorized, http_error

KEY = "a-key-of-twenty-chars"
LIMITS = UploadLimits(max_image_bytes=1000, max_batch_bytes=200_000)


def app() -> Chalice:
    app = Chalice(app_name="admission")

    @app.route("/v1/images", methods=["POST"], content_types=["*/*"], api_key_required=True)
    def images() -> dict:
        return {}

    @app.route("/v1/batches", methods=["POST"], content_types=["*/*"], api_key_required=True)
    def batches() -> dict:
        return {}

    @app.route("/v1/images/{image_id}", methods=["GET"], api_key_required=True)
    def image(image_id: str) -> dict:
        return {}

    @app.route("/", methods=["POST"], content_types=["*/*"], api_key_required=True)
    def course() -> dict:
        return {}

    @app.route("/openapi.json", methods=["GET"], api_key_required=False)
    def openapi() -> dict:
        return {}

    return app


def admission(open_course_endpoint: bool = False) -> Admission:
    return Admission(app(), AuthSettings(keys=(KEY,), open_course_endpoint=open_course_endpoint), LIMITS)


def test_a_keyed_route_without_its_key_is_refused_whatever_the_body_announces():
    with pytest.raises(Unauthorized):
        admission().admit("POST", "/v1/images", {"content-length": str(200 * 1024 * 1024)})
    with pytest.raises(Forbidden):
        admission().admit("POST", "/v1/images", {"content-length": "10", "x-api-key": "not-the-key-at-all"})
    with pytest.raises(Unauthorized):  # a route with path parameters and a query
        admission().admit("GET", "/v1/images/abc?wait=3", {})


def test_routes_that_need_no_key_and_paths_no_route_serves_are_admitted_without_one():
    assert admission().admit("GET", "/openapi.json", {}).route == "/openapi.json"
    assert admission().admit("GET", "/nowhere", {}).route is None  # the gateway's 404, whoever asks
    assert admission(open_course_endpoint=True).admit("POST", "/", {"content-length": "5"}).length == 5
    with pytest.raises(Unauthorized):
        admission().admit("POST", "/", {"content-length": "5"})


def test_each_route_has_its_body_limit_and_the_413_names_it():
    keyed = {"x-api-key": KEY}
    image = admission().admit("POST", "/v1/images", {**keyed, "content-length": str(1000 + MULTIPART_HEADROOM)})
    assert (image.length, image.limit, image.named) == (1000 + MULTIPART_HEADROOM, 1000 + MULTIPART_HEADROOM, 1000)
    assert admission().admit("POST", "/v1/batches", {**keyed, "content-length": "200000"}).length == 200_000
    with pytest.raises(TooLarge, match=r"the request body is 200001 bytes; the limit is 200000 bytes"):
        admission().admit("POST", "/v1/batches", {**keyed, "content-length": "200001"})
    with pytest.raises(TooLarge, match=r"the limit is 1000 bytes"):
        admission().admit("POST", "/v1/images", {**keyed, "content-length": "200000"})


@pytest.mark.parametrize("raw", ["-5", "1e3", "12 34", "", "0x10", "1" * 21])
def test_a_content_length_that_is_not_a_size_is_a_400(raw):
    with pytest.raises(InvalidRequest, match="is not a size"):
        content_length({"content-length": raw})


def test_a_chunked_body_is_refused_where_the_server_cannot_read_one():
    headers = {"x-api-key": KEY, "transfer-encoding": "chunked"}
    assert admission().admit("POST", "/v1/images", headers).length is None
    with pytest.raises(LengthRequired):
        admission().admit("POST", "/v1/images", headers, chunked_ok=False)
    assert http_error(LengthRequired("length_required", "x")).status == 411


def test_the_limits_come_from_their_variables_and_a_bad_one_names_itself():
    assert load_web_limits({}) == WebLimits()
    limits = load_web_limits({
        "IRAAS_WEB_HEADER_TIMEOUT_S": "1.5", "IRAAS_WEB_BODY_TIMEOUT_S": "3", "IRAAS_WEB_BODY_MIN_BYTES_PER_S": "100",
        "IRAAS_WEB_MAX_CONNECTIONS": "64", "IRAAS_WEB_DISCARD_BYTES": "0", "IRAAS_WEB_DISCARD_S": "0.5",
        "IRAAS_WEB_SEND_TIMEOUT_S": "9",
    })
    assert limits == WebLimits(1.5, 3.0, 100, 64, 0, 0.5, 9.0)
    assert limits.body_deadline_s(1000) == 3.0 + 10.0
    with pytest.raises(ConfigError, match="IRAAS_WEB_MAX_CONNECTIONS"):
        load_web_limits({"IRAAS_WEB_MAX_CONNECTIONS": "0"})


def test_the_defaults_leave_room_for_a_burst_of_100_clients():
    assert WebLimits().max_connections >= 5 * 100


def test_a_refusal_is_a_whole_json_response_that_closes_its_connection():
    data = response_bytes(http_error(BUSY))

    head, _, body = data.partition(b"\r\n\r\n")
    lines = head.decode().split("\r\n")
    assert lines[0] == "HTTP/1.1 503 Service Unavailable"
    headers = dict(line.split(": ", 1) for line in lines[1:])
    assert headers["Connection"] == "close" and headers["Retry-After"] == "1"
    assert headers["Content-Type"] == "application/json" and int(headers["Content-Length"]) == len(body)
    assert headers["X-Content-Type-Options"] == "nosniff"
    assert json.loads(body)["error"]["code"] == "busy"
