"""API keys on the web tier, through chalice's test client on moto (what iraas up, gunicorn and
Lambda run): with IRAAS_API_KEY set every route but the health check, the page and the API's
description needs the key."""

from __future__ import annotations

import json

import pytest
from chalice.test import Client

from tests.support.web import load_app_module

KEY = "test-key-0123456789abcdef"
NEW_KEY = "new-key-0123456789abcdef"
# What needs no key: load balancers' health check, the page with its files and the API's
# description (they hold no data).
OPEN = {("/v1/healthz", "GET"), ("/", "GET"), ("/assets/{name}", "GET"), ("/openapi.json", "GET")}


def _every_route() -> list[tuple[str, str]]:
    routes = load_app_module("iraas_routes_for_collection").app.routes
    return sorted((path, method) for path, entries in routes.items() for method in entries)


ROUTES = _every_route()
KEYED = [route for route in ROUTES if route not in OPEN]


def concrete(path: str) -> str:
    """A path the route matches: each {parameter} filled in."""
    for parameter in ("{image_id}", "{enrolment_id}", "{video_id}"):
        path = path.replace(parameter, "0" * 32)
    return path.replace("{name}", "Ada")


def call(client: Client, method: str, path: str, key: str | None = None):
    headers = {"Content-Type": "application/json", **({"x-api-key": key} if key else {})}
    return client.http.request(method, concrete(path), headers=headers, body=b"[]")


@pytest.fixture
def client(web_app):
    with Client(web_app.app) as client:
        yield client


@pytest.fixture
def keyed(monkeypatch, stack):
    """IRAAS_API_KEY set (after the stack, which clears a developer's own)."""
    monkeypatch.setenv("IRAAS_API_KEY", KEY)


def test_every_route_needs_a_key_but_the_health_check_the_page_and_the_api_description():
    assert {route for route in ROUTES if route in OPEN} == OPEN
    assert len(KEYED) == len(ROUTES) - len(OPEN) > 80  # 16 paths, every method of each


def test_without_a_key_configured_every_route_answers_as_before(client):
    assert client.http.get("/v1/stats").status_code == 200
    body = json.dumps([{"id": 1, "name": "Ada", "major": "Maths", "year": 2}])
    imported = client.http.post("/v1/students", headers={"Content-Type": "application/json"}, body=body)
    assert imported.status_code == 200
    assert client.http.get("/v1/students").json_body["students"][0]["name"] == "Ada"
    assert client.http.delete("/v1/images").status_code == 405


@pytest.mark.usefixtures("keyed")
@pytest.mark.parametrize(("path", "method"), KEYED, ids=[f"{m} {p}" for p, m in KEYED])
def test_with_a_key_configured_a_route_answers_401_without_it_and_403_with_a_wrong_one(client, path, method):
    missing = call(client, method, path)
    assert missing.status_code == 401
    assert missing.headers["Content-Type"] == "application/json"
    assert json.loads(missing.body)["error"]["code"] == "unauthorized"
    assert "x-api-key" in missing.headers["WWW-Authenticate"]
    wrong = call(client, method, path, key="wrong-key-0123456789")
    assert wrong.status_code == 403
    assert json.loads(wrong.body)["error"] == {
        "code": "forbidden", "message": "the API key in the x-api-key header is not valid",
    }


@pytest.mark.usefixtures("keyed")
@pytest.mark.parametrize(("path", "method"), sorted(OPEN))
def test_with_a_key_configured_the_health_check_and_the_page_stay_open(client, path, method):
    path = "/assets/app.js" if path == "/assets/{name}" else path
    assert client.http.request(method, path).status_code == 200


@pytest.mark.usefixtures("keyed")
def test_with_the_right_key_the_routes_answer_as_before(client):
    assert call(client, "GET", "/v1/stats", KEY).status_code == 200
    assert call(client, "GET", "/v1/images/{image_id}", KEY).status_code == 404
    assert call(client, "POST", "/v1/students", KEY).json_body["error"]["code"] == "invalid_students"  # past the key
    assert call(client, "DELETE", "/v1/stats", KEY).status_code == 405


def test_two_keys_both_work_while_one_replaces_the_other(monkeypatch, client):
    monkeypatch.setenv("IRAAS_API_KEY", f"{NEW_KEY},{KEY}")
    assert call(client, "GET", "/v1/stats", KEY).status_code == 200
    assert call(client, "GET", "/v1/stats", NEW_KEY).status_code == 200
    assert call(client, "GET", "/v1/stats", "retired-key-0123456789").status_code == 403


@pytest.mark.usefixtures("keyed")
def test_an_open_course_endpoint_takes_posts_without_a_key_and_nothing_else(monkeypatch, client):
    closed = client.http.post("/", headers={"Content-Type": "text/plain"}, body=b"")
    assert closed.status_code == 401
    monkeypatch.setenv("IRAAS_OPEN_COURSE_ENDPOINT", "true")
    module = load_app_module()  # a new process reads the setting
    try:
        with Client(module.app) as fresh:
            course = fresh.http.post("/", headers={"Content-Type": "text/plain"}, body=b"")
            assert course.json_body["error"]["code"] == "unsupported_media_type"  # past the key check
            assert call(fresh, "POST", "/v1/images").status_code == 401
            assert call(fresh, "PUT", "/").status_code == 401
    finally:
        if module.service.cache_info().currsize:  # its reply queue, while the stack still exists
            module.service().replies.close()


def test_a_bad_key_setting_fails_the_health_check_and_never_opens_a_route(monkeypatch, client):
    monkeypatch.setenv("IRAAS_API_KEY", "short")
    health = client.http.get("/v1/healthz")
    assert health.status_code == 500
    stats = client.http.get("/v1/stats")
    assert stats.status_code == 500 and stats.json_body["error"]["code"] == "internal"


def lambda_event(path: str, identity: dict) -> dict:
    """What API Gateway hands the function: the key it checked shows as the identity's apiKeyId."""
    return {
        "resource": path, "path": path, "httpMethod": "GET", "headers": {}, "multiValueHeaders": {},
        "queryStringParameters": None, "multiValueQueryStringParameters": None, "pathParameters": None,
        "stageVariables": None, "body": None, "isBase64Encoded": False,
        "requestContext": {"resourcePath": path, "httpMethod": "GET", "path": f"/api{path}", "stage": "api",
                           "identity": identity},
    }


def test_on_lambda_the_app_trusts_api_gateways_key_check_and_refuses_a_request_without_it(monkeypatch, web_app):
    monkeypatch.setenv("AWS_LAMBDA_FUNCTION_NAME", "iraas-web-dev")
    checked = web_app.app(lambda_event("/v1/stats", {"sourceIp": "203.0.113.9", "apiKeyId": "k1a2b3"}), None)
    assert checked["statusCode"] == 200
    # An API deployed without its key requirement: the function fails closed.
    unchecked = web_app.app(lambda_event("/v1/stats", {"sourceIp": "203.0.113.9"}), None)
    assert unchecked["statusCode"] == 401
    assert json.loads(unchecked["body"])["error"]["code"] == "unauthorized"
    assert web_app.app(lambda_event("/v1/healthz", {"sourceIp": "203.0.113.9"}), None)["statusCode"] == 200
