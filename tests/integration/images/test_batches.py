"""POST /v1/batches and ?top=N through chalice's test client, against moto, with a real worker."""

from __future__ import annotations

import io
import json
import uuid

import pytest
from PIL import Image


def batch_body(files: list[tuple[str, str, bytes]], note: bool = False) -> tuple[bytes, str]:
    """A multipart body of ``(field, filename, data)`` file parts (and a plain field first, if ``note``)."""
    boundary = uuid.uuid4().hex
    body = b""
    if note:
        body += f'--{boundary}\r\nContent-Disposition: form-data; name="note"\r\n\r\nhello\r\n'.encode()
    for field, filename, data in files:
        body += (
            f'--{boundary}\r\nContent-Disposition: form-data; name="{field}"; filename="{filename}"\r\n'
            "Content-Type: application/octet-stream\r\n\r\n"
        ).encode() + data + b"\r\n"
    return body + f"--{boundary}--\r\n".encode(), f"multipart/form-data; boundary={boundary}"


def tiny_png() -> bytes:
    out = io.BytesIO()
    Image.new("RGB", (8, 8), "red").save(out, "PNG")
    return out.getvalue()


def post_batch(client, files, query: str = "", note: bool = False):
    body, content_type = batch_body(files, note)
    return client.http.post(f"/v1/batches{query}", headers={"Content-Type": content_type}, body=body)


def queued_ids(sqs, stack) -> list[str]:
    messages = sqs.receive_message(QueueUrl=stack.request_queue_url, MaxNumberOfMessages=10, VisibilityTimeout=0)
    return sorted(json.loads(m["Body"])["id"] for m in messages.get("Messages", []))


def error_of(response) -> dict:
    assert response.headers["Content-Type"] == "application/json"
    return json.loads(response.body)["error"]


def test_a_batch_answers_each_part_in_order_and_a_bad_part_fails_only_itself(
    client, imagenet_sample, classifier, running_worker
):
    photos = imagenet_sample[:3]
    files = [("a", "one.jpg", photos[0].path.read_bytes()), ("b", "notes.jpg", b"I am text, not a photo"),
             ("c", "two.jpg", photos[1].path.read_bytes()), ("c", "three.jpg", photos[2].path.read_bytes())]
    response = post_batch(client, files, "?wait=20", note=True)

    assert response.status_code == 200
    results = json.loads(response.body)["results"]
    assert [r["name"] for r in results] == ["one.jpg", "notes.jpg", "two.jpg", "three.jpg"]
    assert results[1] == {"name": "notes.jpg", "error": {"code": "not_an_image", "message": results[1]["error"]["message"]}}
    expected = classifier.classify_bytes([p.path.read_bytes() for p in photos])
    for result, classification in zip([results[0], results[2], results[3]], expected, strict=True):
        assert result["status"] == "done" and result["label"] == classification.best.label
        assert len(result["top5"]) == 5 and "top" not in result
        again = client.http.get(f"/v1/images/{result['id']}")  # each is an image like any other
        assert again.status_code == 200 and json.loads(again.body) == result


def test_a_batch_without_waiting_is_queued_part_by_part(client, stack, sqs, photo):
    files = [("f", f"photo-{n}.jpg", photo.path.read_bytes()) for n in range(3)]
    response = post_batch(client, files, "?wait=0")

    assert response.status_code == 200
    results = json.loads(response.body)["results"]
    assert [(r["name"], r["status"]) for r in results] == [(f"photo-{n}.jpg", "queued") for n in range(3)]
    assert queued_ids(sqs, stack) == sorted(r["id"] for r in results)
    pending = client.http.get(f"/v1/images/{results[0]['id']}")
    assert pending.status_code == 202


def test_more_files_than_the_limit_is_a_413_and_nothing_is_queued(client, stack, sqs, photo):
    files = [("f", f"photo-{n}.jpg", photo.path.read_bytes()) for n in range(17)]
    response = post_batch(client, files, "?wait=0")

    assert response.status_code == 413
    assert error_of(response)["code"] == "too_many_files" and "16" in error_of(response)["message"]
    assert queued_ids(sqs, stack) == []
    assert post_batch(client, files[:16], "?wait=0").status_code == 200  # 16 is within it


def test_the_limits_are_settings(client, stack, sqs, photo, monkeypatch, web_app):
    monkeypatch.setenv("IRAAS_MAX_BATCH_FILES", "2")
    monkeypatch.setenv("IRAAS_MAX_BATCH_BYTES", str(len(photo.path.read_bytes()) * 2 + 1000))
    web_app.service.cache_clear()
    three = [("f", f"dot-{n}.png", tiny_png()) for n in range(3)]  # well within the bytes

    too_many = post_batch(client, three, "?wait=0")
    assert too_many.status_code == 413 and error_of(too_many)["code"] == "too_many_files"
    too_big = post_batch(client, [("f", "big.jpg", photo.path.read_bytes() * 3)], "?wait=0")
    assert too_big.status_code == 413 and error_of(too_big)["code"] == "too_large"
    assert queued_ids(sqs, stack) == []


@pytest.mark.parametrize(
    ("content_type", "body", "status", "code"),
    [
        ("image/jpeg", b"\xff\xd8", 415, "unsupported_media_type"),
        ("multipart/form-data; boundary=b0undary",
         b'--b0undary\r\nContent-Disposition: form-data; name="note"\r\n\r\nhi\r\n--b0undary--\r\n', 400, "no_file"),
        ("multipart/form-data", b"--x--", 400, "bad_multipart"),
    ],
)
def test_a_batch_that_is_no_batch_is_a_json_4xx(client, stack, sqs, content_type, body, status, code):
    response = client.http.post("/v1/batches", headers={"Content-Type": content_type}, body=body)

    assert response.status_code == status and error_of(response)["code"] == code
    assert queued_ids(sqs, stack) == []


def test_top_lists_that_many_labels_beside_an_unchanged_top5(client, photo, classifier, running_worker):
    data = photo.path.read_bytes()
    single = client.http.post("/v1/images?wait=20&top=12", headers={"Content-Type": "image/jpeg"}, body=data)
    batch = post_batch(client, [("f", "fish.jpg", data)], "?wait=20&top=3")

    assert single.status_code == 200
    result = json.loads(single.body)
    expected = classifier.classify_bytes([data], top=12)[0]
    assert [p["label"] for p in result["top"]] == [p.label for p in expected.ranked]
    assert result["top5"] == result["top"][:5]
    assert json.loads(client.http.get(f"/v1/images/{result['id']}").body)["top"] == result["top"]
    [item] = json.loads(batch.body)["results"]
    assert item["top"] == result["top"][:3] and item["top5"] == result["top5"]


@pytest.mark.parametrize("top", ["0", "21", "five", "-1", "2.5"])
def test_a_bad_top_is_a_400(client, stack, sqs, photo, top):
    single = client.http.post(f"/v1/images?top={top}", headers={"Content-Type": "image/jpeg"},
                              body=photo.path.read_bytes())
    batch = post_batch(client, [("f", "fish.jpg", photo.path.read_bytes())], f"?top={top}")

    for response in (single, batch):
        assert response.status_code == 400 and error_of(response)["code"] == "bad_top"
    assert queued_ids(sqs, stack) == []
