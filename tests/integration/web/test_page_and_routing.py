"""The page's files and the routing answers, through chalice's test client (what Lambda runs)."""

from __future__ import annotations

import re

import pytest
from chalice.test import Client

from iraas.config import CHALICE_PROJECT

STATIC = CHALICE_PROJECT / "chalicelib" / "static"


@pytest.fixture
def client(web_app):
    with Client(web_app.app) as client:
        yield client


def test_the_page_and_every_file_it_loads_are_served_with_the_security_policy(client):
    page = client.http.get("/")
    assert page.status_code == 200
    assert page.headers["Content-Type"] == "text/html; charset=utf-8"
    policy = page.headers["Content-Security-Policy"]
    assert "default-src 'none'" in policy and "script-src 'self'" in policy and "frame-ancestors 'none'" in policy
    html = page.body.decode()
    linked = re.findall(r'(?:src|href)="(assets/[^"]+)"', html)
    assert {"assets/app.js", "assets/app.css", "assets/dashboard.js"} <= set(linked)
    for path in linked:
        asset = client.http.get("/" + path)
        assert asset.status_code == 200, path
        assert asset.headers["Content-Security-Policy"] == policy
        assert asset.body.decode() == (STATIC / path.removeprefix("assets/")).read_text()
    assert not re.search(r"<script>|\son[a-z]+=", html)  # no inline script for the policy to refuse


def test_only_the_listed_files_are_served(client):
    for name in ["index.html", "..%2Fpage.py", "nope.js"]:
        response = client.http.get(f"/assets/{name}")
        assert response.status_code == 404
        assert response.json_body["error"]["code"] == "not_found"


def test_the_page_links_resolve_under_api_gateways_stage_path(web_app):
    """Behind API Gateway the page is /api/ (its stage); its base must say so, slash or not."""
    event = {
        "resource": "/", "path": "/", "httpMethod": "GET", "headers": {}, "multiValueHeaders": {},
        "queryStringParameters": None, "multiValueQueryStringParameters": None, "pathParameters": None,
        "stageVariables": None, "body": None, "isBase64Encoded": False,
        "requestContext": {"resourcePath": "/", "httpMethod": "GET", "path": "/api", "stage": "api"},
    }
    response = web_app.app(event, None)
    assert response["statusCode"] == 200
    assert '<base href="/api/">' in response["body"]


@pytest.mark.parametrize(
    ("method", "path", "allowed"),
    [
        ("DELETE", "/v1/stats", "GET"),
        ("PUT", "/", "GET, POST"),
        ("GET", "/v1/images", "POST"),
        ("PATCH", "/v1/images/0123", "GET"),
    ],
)
def test_a_method_a_route_does_not_support_is_a_json_405_naming_the_allowed_ones(client, method, path, allowed):
    response = client.http.request(method, path, headers={"Content-Type": "text/plain"}, body=b"x")
    assert response.status_code == 405
    assert response.headers["Allow"] == allowed
    assert response.json_body["error"]["code"] == "method_not_allowed"


def test_every_route_answers_every_method(web_app):
    """No method of any route is left to API Gateway's 403 (chalice's route table, all methods)."""
    from chalicelib.responses import HTTP_METHODS

    for path, entries in web_app.app.routes.items():
        assert set(entries) == set(HTTP_METHODS), path
