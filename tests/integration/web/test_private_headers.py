"""Every answer of the API says nosniff and no-store (chalice_web/chalicelib/responses.py): a browser
never runs a user's data as another type, and no cache keeps it; the page's files keep their own
Cache-Control."""

from __future__ import annotations

import pytest
from chalice.test import Client

PRIVATE = {"x-content-type-options": "nosniff", "cache-control": "no-store"}


@pytest.fixture
def client(web_app):
    with Client(web_app.app) as client:
        yield client


def lowered(headers) -> dict[str, str]:
    return {k.lower(): v for k, v in headers.items()}


def test_answers_that_carry_data_and_errors_are_neither_sniffed_nor_cached(client, photo) -> None:
    queued = client.http.post("/v1/images?wait=0", headers={"Content-Type": "image/jpeg"}, body=photo.path.read_bytes())
    image_id = queued.json_body["id"]
    answers = {
        "POST /v1/images": queued,
        "GET /v1/images/{id}": client.http.get(f"/v1/images/{image_id}"),
        "GET /v1/images/{unknown}": client.http.get("/v1/images/" + "0" * 32),
        "400": client.http.post("/v1/images?wait=soon", headers={"Content-Type": "image/jpeg"}, body=b"x"),
        "GET /v1/students": client.http.get("/v1/students"),
        "GET /v1/stats": client.http.get("/v1/stats"),
        "POST / (text)": client.http.post("/", headers={"Content-Type": "text/plain"}, body=b"x"),
    }
    for what, answer in answers.items():
        headers = lowered(answer.headers)
        assert {k: headers.get(k) for k in PRIVATE} == PRIVATE, what


def test_the_pages_files_keep_their_cache_policy_and_are_not_sniffed(client) -> None:
    for path in ("/", "/assets/app.js"):
        headers = lowered(client.http.get(path).headers)
        assert headers["x-content-type-options"] == "nosniff" and headers["cache-control"] == "no-cache", path
