"""The published contract, GET /openapi.json, through chalice's test client (what Lambda runs), on
moto: a valid OpenAPI document of exactly the routes the app serves, whose key requirements are the
ones the server enforces and whose statuses, error codes, headers and schemas are what it answers;
and the page that renders it."""

from __future__ import annotations

import io
import json
import re
import uuid
from typing import Any
from urllib.parse import urljoin

import pytest
from chalice.test import Client
from openapi_schema_validator import OAS31Validator
from openapi_spec_validator import validate
from PIL import Image

from iraas.config import CHALICE_PROJECT
from iraas.images.worker import Worker
from tests.support.workers import polling_in_background

STATIC = CHALICE_PROJECT / "chalicelib" / "static"
KEY = "test-key-0123456789abcdef"
# Not routes of the contract: the page's own files, and every route's automatic 405 answers.
NOT_API_MODULES = ("chalicelib.page", "chalicelib.responses")


@pytest.fixture
def client(web_app):
    with Client(web_app.app) as client:
        yield client


def jpeg(size: int = 32) -> bytes:
    out = io.BytesIO()
    Image.new("RGB", (size, size), (200, 120, 40)).save(out, "JPEG")
    return out.getvalue()


def multipart(files: list[tuple[str, bytes]]) -> tuple[bytes, str]:
    """A multipart body of ``(filename, data)`` file parts, and its Content-Type."""
    boundary = uuid.uuid4().hex
    body = b"".join(
        f'--{boundary}\r\nContent-Disposition: form-data; name="file"; filename="{name}"\r\n'
        f"Content-Type: application/octet-stream\r\n\r\n".encode() + data + b"\r\n"
        for name, data in files
    )
    return body + f"--{boundary}--\r\n".encode(), f"multipart/form-data; boundary={boundary}"


def get_document(client: Client) -> dict[str, Any]:
    response = client.http.get("/openapi.json")
    assert response.status_code == 200
    assert response.headers["Content-Type"] == "application/json"
    return json.loads(response.body)


def operations(document: dict[str, Any]) -> dict[tuple[str, str], dict[str, Any]]:
    methods = {"get", "put", "post", "delete", "options", "head", "patch", "trace"}
    return {(path, method): op for path, item in document["paths"].items() for method, op in item.items() if method in methods}


def served(app: Any) -> dict[tuple[str, str], Any]:
    """The app's API routes by (path, lowercase method), from chalice's own route table."""
    return {
        (path, method.lower()): route
        for path, entries in app.routes.items()
        for method, route in entries.items()
        if route.view_function.__module__ not in NOT_API_MODULES
    }


def resolve(document: dict[str, Any], item: dict[str, Any]) -> dict[str, Any]:
    """A ``#/components/...`` reference followed; anything else as it is."""
    if "$ref" not in item:
        return item
    for key in item["$ref"].removeprefix("#/").split("/"):
        document = document[key]
    return document


def check_documented(document: dict[str, Any], method: str, path: str, response: Any, unsaid: str = "") -> None:
    """``response`` (to ``method path``, the route's template) is one the document lists: its
    status, its media type (``unsaid`` when it sends none), the headers it requires, and a body
    its schema accepts."""
    operation = operations(document)[(path, method.lower())]
    status = str(response.status_code)
    assert status in operation["responses"], f"{method} {path} answered {status}: {response.body[:300]!r}"
    documented = resolve(document, operation["responses"][status])
    media = response.headers.get("Content-Type", unsaid).split(";")[0]
    assert media in documented.get("content", {}), f"{method} {path} {status} answered {media}"
    for name, header in documented.get("headers", {}).items():
        assert not header.get("required") or name in response.headers, f"{method} {path} {status} lacks {name}"
    if media == "application/json" or media.startswith("text/"):  # a picture's bytes have no schema to meet
        schema = documented["content"][media]["schema"]
        body = json.loads(response.body) if media == "application/json" else response.body.decode()
        # The document's components beside the schema, so that its "#/components/..." references resolve.
        OAS31Validator({**schema, "components": document["components"]}).validate(body)


def test_the_document_is_valid_openapi_served_without_a_key(client, monkeypatch):
    monkeypatch.setenv("IRAAS_API_KEY", KEY)  # keys are on, and the contract is still public

    document = get_document(client)

    validate(document)  # raises, saying where, if it is not a valid OpenAPI document
    assert document["components"]["securitySchemes"]["ApiKey"] == {"type": "apiKey", "in": "header", "name": "x-api-key"}


def test_the_document_lists_every_route_the_app_serves_and_nothing_else(client, web_app):
    documented = operations(get_document(client))
    routes = served(web_app.app)

    assert set(documented) == set(routes)
    for route, operation in documented.items():  # each path parameter under the route's own name
        names = [p["name"] for p in operation.get("parameters", []) if p["in"] == "path"]
        assert names == routes[route].view_args, route


def test_the_routes_the_document_marks_open_are_the_ones_that_answer_without_a_key(client, monkeypatch):
    monkeypatch.setenv("IRAAS_API_KEY", KEY)
    document = get_document(client)

    for (path, method), operation in operations(document).items():
        concrete = re.sub(r"{\w+}", "0" * 32, path)
        response = client.http.request(method.upper(), concrete, headers={"Content-Type": "application/json"}, body=b"[]")
        if operation.get("security") == []:
            assert response.status_code == 200, (method, path)
        else:
            assert response.status_code == 401, (method, path)
            check_documented(document, method, path, response)


def test_what_the_image_routes_answer_is_what_the_document_says(client):
    document = get_document(client)
    photo = jpeg()

    def check(method: str, path: str, concrete: str | None = None, **request: Any) -> Any:
        response = client.http.request(method, concrete or path, **request)
        check_documented(document, method, path, response)
        return response

    queued = check("POST", "/v1/images", "/v1/images?wait=0&name=a.jpg", headers={"Content-Type": "image/jpeg"}, body=photo)
    assert queued.status_code == 202
    image_id = json.loads(queued.body)["id"]
    assert check("GET", "/v1/images/{image_id}", f"/v1/images/{image_id}").status_code == 202
    assert check("GET", "/v1/images/{image_id}", "/v1/images/" + "0" * 32).status_code == 404
    refusals = [
        ("/v1/images?top=21", "image/jpeg", photo, 400),
        ("/v1/images?callback=https://hooks.example.com/in", "image/jpeg", photo, 400),  # no webhook secret here
        ("/v1/images?wait=soon", "image/jpeg", photo, 400),
        ("/v1/images", "image/jpeg", b"I am text", 400),
        ("/v1/images", "text/plain", photo, 415),
    ]
    for concrete, content_type, body, status in refusals:
        response = check("POST", "/v1/images", concrete, headers={"Content-Type": content_type}, body=body)
        assert response.status_code == status, concrete

    body, content_type = multipart([("a.jpg", photo), ("notes.jpg", b"I am text")])
    batch = check("POST", "/v1/batches", "/v1/batches?wait=0", headers={"Content-Type": content_type}, body=body)
    assert [item.get("status") for item in json.loads(batch.body)["results"]] == ["queued", None]
    body, content_type = multipart([(f"{n}.jpg", photo) for n in range(17)])  # over the default 16
    assert check("POST", "/v1/batches", headers={"Content-Type": content_type}, body=body).status_code == 413
    assert check("POST", "/v1/batches", headers={"Content-Type": "image/jpeg"}, body=photo).status_code == 415

    for path in ("/v1/healthz", "/v1/stats", "/v1/metrics", "/openapi.json"):
        assert check("GET", path).status_code == 200


def test_the_document_describes_the_callback_post_and_its_signature(client):
    document = get_document(client)
    for path in ("/v1/images", "/v1/batches"):
        operation = document["paths"][path]["post"]
        assert "callback" in [parameter["name"] for parameter in operation["parameters"]]
        post = operation["callbacks"]["answered"]["{$request.query.callback}"]["post"]
        assert {parameter["name"] for parameter in post["parameters"]} == {"Iraas-Signature", "Iraas-Delivery"}
        assert {"bad_callback", "callbacks_disabled"} <= set(str(operation["responses"]["400"]).split("'"))


def test_what_the_classroom_routes_answer_is_what_the_document_says(client):
    document = get_document(client)

    def check(method: str, path: str, concrete: str | None = None, content_type: str = "application/json",
              body: bytes = b"") -> Any:
        response = client.http.request(method, concrete or path, headers={"Content-Type": content_type}, body=body)
        # chalice answers a body type a route does not take itself: its own JSON, with no Content-Type.
        check_documented(document, method, path, response, unsaid="application/json" if response.status_code == 415 else "")
        return response

    students = json.dumps([{"id": 1, "name": "Ada", "major": "Maths", "year": 2}]).encode()
    assert check("POST", "/v1/students", body=students).status_code == 200
    assert check("POST", "/v1/students", body=b'{"id": 1}').status_code == 400
    assert check("POST", "/v1/students", content_type="text/plain", body=students).status_code == 415
    assert check("GET", "/v1/students").status_code == 200
    photo = check("POST", "/v1/students/{name}/photos", "/v1/students/Ada/photos", "image/jpeg", jpeg())
    assert photo.status_code == 202
    enrolment = json.loads(photo.body)["enrolment"]
    assert check("GET", "/v1/enrolments/{enrolment_id}", f"/v1/enrolments/{enrolment}").status_code == 202
    assert check("DELETE", "/v1/students/{name}", "/v1/students/Nobody").status_code == 404
    assert check("DELETE", "/v1/students/{name}", "/v1/students/Ada").status_code == 200

    video = check("POST", "/v1/videos", "/v1/videos?name=lecture.mp4", "video/mp4", b"\x00\x00\x00\x18ftypmp42")
    assert video.status_code == 202
    video_id = json.loads(video.body)["video"]
    assert check("POST", "/v1/videos", content_type="video/mp4").status_code == 400
    listed = check("GET", "/v1/videos")
    assert listed.status_code == 200 and [v["video"] for v in json.loads(listed.body)["videos"]] == [video_id]
    for path in ("/v1/videos/{video_id}/csv", "/v1/videos/{video_id}/attendance", "/v1/videos/{video_id}/unknown/{index}"):
        concrete = path.replace("{video_id}", video_id).replace("{index}", "0")
        assert check("GET", path, concrete).status_code == 404  # not processed yet


@pytest.mark.slow
def test_classified_images_answer_as_the_document_says(client, stack, classifier, photo):
    document = get_document(client)
    image = photo.path.read_bytes()

    with polling_in_background(Worker(stack, classifier)):
        single = client.http.post("/v1/images?wait=20&top=3", headers={"Content-Type": "image/jpeg"}, body=image)
        body, content_type = multipart([("a.jpg", image), ("notes.jpg", b"I am text")])
        batch = client.http.post("/v1/batches?wait=20&top=2", headers={"Content-Type": content_type}, body=body)
        body, content_type = multipart([("tench.jpg", image)])
        course = client.http.post("/", headers={"Content-Type": content_type}, body=body)

    assert single.status_code == 200 and len(json.loads(single.body)["top"]) == 3
    check_documented(document, "POST", "/v1/images", single)
    assert [item.get("status") for item in json.loads(batch.body)["results"]] == ["done", None]
    check_documented(document, "POST", "/v1/batches", batch)
    assert course.status_code == 200
    check_documented(document, "POST", "/", course)


def test_the_document_states_the_batch_limit_the_server_enforces(client, monkeypatch):
    monkeypatch.setenv("IRAAS_MAX_BATCH_FILES", "3")
    document = get_document(client)
    files = document["paths"]["/v1/batches"]["post"]["requestBody"]["content"]["multipart/form-data"]["schema"]

    body, content_type = multipart([(f"{n}.jpg", jpeg()) for n in range(files["properties"]["files"]["maxItems"] + 1)])
    response = client.http.post("/v1/batches", headers={"Content-Type": content_type}, body=body)

    assert files["properties"]["files"]["maxItems"] == 3
    assert response.status_code == 413 and json.loads(response.body)["error"]["code"] == "too_many_files"


def test_the_page_links_the_api_reference_which_is_served_with_the_security_policy(client):
    page = client.http.get("/")
    policy = page.headers["Content-Security-Policy"]
    assert 'href="assets/reference.html"' in page.body.decode()

    reference = client.http.get("/assets/reference.html")
    html = reference.body.decode()
    assert reference.status_code == 200 and reference.headers["Content-Type"] == "text/html; charset=utf-8"
    assert reference.headers["Content-Security-Policy"] == policy
    assert not re.search(r"<script>|\son[a-z]+=", html)  # no inline script for the policy to refuse
    script = (STATIC / "reference.js").read_text()
    fetched = re.findall(r'fetch\("([^"]+)"', script)
    # Every file it loads, every link it has and what its script fetches resolve to answers
    # (relative URLs: the same under API Gateway's stage path, /api/assets/reference.html).
    for target in re.findall(r'(?:src|href)="([^"#]+)"', html) + fetched:
        url = urljoin("/assets/reference.html", target)
        response = client.http.get(url)
        assert response.status_code == 200, url
        if url.startswith("/assets/"):
            assert response.headers["Content-Security-Policy"] == policy
            assert response.body.decode() == (STATIC / url.removeprefix("/assets/")).read_text()
    assert [urljoin("/assets/reference.html", target) for target in fetched] == ["/openapi.json"]
    assert "innerHTML" not in script  # the document's text goes in as text only
