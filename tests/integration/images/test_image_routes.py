"""The web tier's routes through chalice's test client, against moto, with a real worker."""

from __future__ import annotations

import io
import json
import uuid

import pytest
from PIL import Image

from iraas.images.jobs import result_key
from iraas.queues import queue_depth
from tests.support.waiting import wait_until


def multipart(field: str, filename: str, data: bytes, content_type: str = "image/jpeg") -> tuple[bytes, str]:
    boundary = uuid.uuid4().hex
    body = (
        f"--{boundary}\r\nContent-Disposition: form-data; name=\"{field}\"; filename=\"{filename}\"\r\n"
        f"Content-Type: {content_type}\r\n\r\n"
    ).encode() + data + f"\r\n--{boundary}--\r\n".encode()
    return body, f"multipart/form-data; boundary={boundary}"


def queued_requests(sqs, stack) -> list[dict]:
    messages = sqs.receive_message(QueueUrl=stack.request_queue_url, MaxNumberOfMessages=10, VisibilityTimeout=0)
    return [json.loads(m["Body"]) for m in messages.get("Messages", [])]


def error_of(response) -> dict:
    assert response.headers["Content-Type"] == "application/json"
    return json.loads(response.body)["error"]


def test_an_image_posted_without_waiting_is_stored_queued_and_pollable(client, stack, s3, sqs, photo):
    data = photo.path.read_bytes()
    response = client.http.post(
        "/v1/images?wait=0&name=my%20fish.jpg", headers={"Content-Type": "image/jpeg"}, body=data
    )

    assert response.status_code == 202
    queued = json.loads(response.body)
    assert queued["status"] == "queued" and response.headers["Location"] == f"/v1/images/{queued['id']}"
    [request] = queued_requests(sqs, stack)
    assert request["id"] == queued["id"] and request["name"] == "my_fish.jpg"
    assert "image" not in request and len(json.dumps(request)) < 400  # a pointer, never the bytes
    stored = s3.get_object(Bucket=stack.image_input_bucket, Key=request["key"])
    assert stored["Body"].read() == data and stored["ContentType"] == "image/jpeg"
    pending = client.http.get(f"/v1/images/{queued['id']}")
    assert pending.status_code == 202 and json.loads(pending.body)["status"] == "queued"


def test_a_posted_image_is_answered_with_its_label_and_stored_by_id_and_name(
    client, stack, s3, photo, running_worker
):
    response = client.http.post(
        "/v1/images?wait=20&name=fish.jpg", headers={"Content-Type": "image/jpeg"}, body=photo.path.read_bytes()
    )

    assert response.status_code == 200
    result = json.loads(response.body)
    assert {"id", "name", "label", "wnid", "confidence", "top5"} <= result.keys()
    assert (result["label"], result["wnid"], result["name"]) == ("tench", "n01440764", "fish.jpg")
    assert 0 < result["confidence"] <= 1 and len(result["top5"]) == 5
    assert result["top5"][0] == {k: result[k] for k in ("label", "wnid", "confidence")}
    stored = s3.get_object(Bucket=stack.image_output_bucket, Key=result_key(result["id"], "fish.jpg"))
    assert json.loads(stored["Body"].read())["label"] == "tench"
    again = client.http.get(f"/v1/images/{result['id']}")
    assert again.status_code == 200 and json.loads(again.body) == result


KEY_A, KEY_B = "key-a-0123456789abcdef", "key-b-0123456789abcdef"


@pytest.fixture
def two_keys(monkeypatch, stack):
    """IRAAS_API_KEY with two callers' keys (set after the stack, which clears a developer's own)."""
    monkeypatch.setenv("IRAAS_API_KEY", f"{KEY_A},{KEY_B}")


@pytest.mark.usefixtures("two_keys")
def test_a_result_is_found_only_by_the_caller_who_made_it(client, photo, running_worker):
    posted = client.http.post(
        "/v1/images?wait=20&name=fish.jpg",
        headers={"Content-Type": "image/jpeg", "x-api-key": KEY_A},
        body=photo.path.read_bytes(),
    )
    assert posted.status_code == 200
    result = json.loads(posted.body)

    mine = client.http.get(f"/v1/images/{result['id']}", headers={"x-api-key": KEY_A})
    assert mine.status_code == 200 and json.loads(mine.body) == result
    theirs = client.http.get(f"/v1/images/{result['id']}", headers={"x-api-key": KEY_B})
    assert theirs.status_code == 404 and error_of(theirs)["code"] == "not_found"


@pytest.mark.usefixtures("two_keys")
def test_another_callers_id_is_answered_as_an_unknown_one_so_ids_cannot_be_probed(client, photo):
    posted = client.http.post(
        "/v1/images?wait=0", headers={"Content-Type": "image/jpeg", "x-api-key": KEY_A}, body=photo.path.read_bytes()
    )
    known = json.loads(posted.body)["id"]
    unknown = uuid.uuid4().hex

    guessed = client.http.get(f"/v1/images/{known}", headers={"x-api-key": KEY_B})
    never = client.http.get(f"/v1/images/{unknown}", headers={"x-api-key": KEY_B})
    assert guessed.status_code == never.status_code == 404
    assert guessed.headers == never.headers
    assert guessed.body == never.body.replace(unknown.encode(), known.encode())
    assert client.http.get(f"/v1/images/{known}", headers={"x-api-key": KEY_A}).status_code == 202


@pytest.mark.parametrize("field", ["myfile", "inputFile", "anything"])
def test_the_course_endpoint_answers_name_colon_label_for_any_file_field(client, photo, running_worker, field):
    body, content_type = multipart(field, "test_00.JPEG", photo.path.read_bytes())
    response = client.http.post("/", headers={"Content-Type": content_type}, body=body)

    assert response.status_code == 200
    assert response.headers["Content-Type"].startswith("text/plain")
    assert response.body.decode() == "test_00:tench"


def test_a_multipart_upload_to_the_json_api_works_too(client, photo, running_worker):
    body, content_type = multipart("file", "fish.jpg", photo.path.read_bytes())
    response = client.http.post("/v1/images?wait=20", headers={"Content-Type": content_type}, body=body)

    assert response.status_code == 200 and json.loads(response.body)["name"] == "fish.jpg"


def _png(width: int, height: int) -> bytes:
    buf = io.BytesIO()
    Image.new("RGB", (width, height), "white").save(buf, "PNG")
    return buf.getvalue()


@pytest.mark.parametrize(
    ("headers", "body", "status", "code"),
    [
        ({"Content-Type": "image/jpeg"}, b"", 400, "no_file"),
        ({"Content-Type": "image/png"}, b"hello, I am text", 400, "not_an_image"),
        ({"Content-Type": "text/plain"}, b"hello", 415, "unsupported_media_type"),
        ({}, b"hello", 415, "unsupported_media_type"),
        ({"Content-Type": "multipart/form-data"}, b"--x--", 400, "bad_multipart"),
    ],
)
def test_bad_uploads_get_a_json_4xx_and_nothing_is_queued(client, stack, sqs, headers, body, status, code):
    response = client.http.post("/v1/images?wait=0", headers=headers, body=body)

    assert response.status_code == status
    assert error_of(response)["code"] == code
    assert queued_requests(sqs, stack) == []


def test_a_truncated_photo_is_rejected_as_undecodable(client, stack, sqs, photo):
    data = photo.path.read_bytes()
    response = client.http.post("/", headers={"Content-Type": "image/jpeg"}, body=data[: len(data) // 2])

    assert response.status_code == 400 and error_of(response)["code"] == "undecodable"
    assert queued_requests(sqs, stack) == []


def test_a_multipart_form_without_a_file_is_rejected(client):
    boundary = "b0undary"
    body = f'--{boundary}\r\nContent-Disposition: form-data; name="note"\r\n\r\nhi\r\n--{boundary}--\r\n'.encode()
    response = client.http.post("/", headers={"Content-Type": f"multipart/form-data; boundary={boundary}"}, body=body)

    assert response.status_code == 400 and error_of(response)["code"] == "no_file"


def test_too_large_images_are_rejected_stating_the_limit(client, stack, sqs, photo, monkeypatch, web_app):
    monkeypatch.setenv("IRAAS_MAX_IMAGE_BYTES", "20000")
    monkeypatch.setenv("IRAAS_MAX_IMAGE_PIXELS", "250000")
    web_app.service.cache_clear()
    data = photo.path.read_bytes()
    assert len(data) > 20000

    by_bytes = client.http.post("/v1/images", headers={"Content-Type": "image/jpeg"}, body=data)
    body, content_type = multipart("myfile", "big.jpg", data)
    by_bytes_multipart = client.http.post("/", headers={"Content-Type": content_type}, body=body)
    by_pixels = client.http.post("/v1/images", headers={"Content-Type": "image/png"}, body=_png(1000, 1000))

    for response in (by_bytes, by_bytes_multipart):
        assert response.status_code == 413
        error = error_of(response)
        assert error["code"] == "too_large" and "20000 bytes" in error["message"]
    assert by_pixels.status_code == 413 and error_of(by_pixels)["code"] == "too_many_pixels"
    assert "250000" in error_of(by_pixels)["message"].replace(",", "")
    assert queued_requests(sqs, stack) == []


@pytest.mark.parametrize("wait", ["-1", "soon", "nan"])
def test_a_bad_wait_is_a_400(client, photo, wait):
    response = client.http.post(f"/v1/images?wait={wait}", headers={"Content-Type": "image/jpeg"}, body=photo.path.read_bytes())

    assert response.status_code == 400 and error_of(response)["code"] == "bad_wait"


@pytest.mark.parametrize("image_id", ["0" * 32, "not-an-id", "..%2F..%2Fsecrets"])
def test_unknown_ids_are_404(client, image_id):
    response = client.http.get(f"/v1/images/{image_id}")

    assert response.status_code == 404 and error_of(response)["code"] == "not_found"


def test_a_file_name_cannot_steer_the_object_key(client, stack, sqs, photo):
    response = client.http.post(
        "/v1/images?wait=0&name=..%2F..%2Fresults%2Fevil.jpg",
        headers={"Content-Type": "image/jpeg"},
        body=photo.path.read_bytes(),
    )

    request_id = json.loads(response.body)["id"]
    [request] = queued_requests(sqs, stack)
    assert request["key"] == f"inputs/anonymous/{request_id}/evil.jpg"


def test_a_repeated_post_with_the_same_idempotency_key_is_one_request(client, stack, s3, sqs, photo, running_worker):
    """One id and one answer. A retry sent before the answer queues the request again (the first
    POST's send may have failed: that is what the client's retry is for); the worker answers it
    once, and a retry after the answer gets the answer without queueing anything."""
    headers = {"Content-Type": "image/jpeg", "Idempotency-Key": "upload-42"}
    first = json.loads(client.http.post("/v1/images?wait=0", headers=headers, body=photo.path.read_bytes()).body)
    second = json.loads(client.http.post("/v1/images?wait=30", headers=headers, body=photo.path.read_bytes()).body)
    third = client.http.post("/v1/images?wait=0", headers=headers, body=photo.path.read_bytes())

    assert first["id"] == second["id"] == json.loads(third.body)["id"]
    assert second["status"] == "done" and third.status_code == 200 and json.loads(third.body) == second
    results = s3.list_objects_v2(Bucket=stack.image_output_bucket, Prefix="results/").get("Contents", [])
    assert [o["Key"].rsplit("/", 1)[1] for o in results] == [f"{first['id']}.json"]
    wait_until(lambda: queue_depth(sqs, stack.request_queue_url).queued == 0, 30, "the second copy to be retired")
    assert [o["Key"] for o in s3.list_objects_v2(Bucket=stack.image_output_bucket, Prefix="results/")["Contents"]] == [
        results[0]["Key"]
    ]


def test_two_callers_with_the_same_idempotency_key_are_two_requests_each_with_its_own_answer(
    monkeypatch, client, stack, photo, running_worker
):
    """Idempotency keys are scoped to the caller: another client's ``order-1`` is not mine."""
    alice, bob = "alice-key-0123456789abcdef", "bob-key-0123456789abcdef"
    monkeypatch.setenv("IRAAS_API_KEY", f"{alice},{bob}")  # read on the first request of this app
    data = photo.path.read_bytes()

    def post(key: str, name: str):
        headers = {"Content-Type": "image/jpeg", "Idempotency-Key": "order-1", "x-api-key": key}
        return client.http.post(f"/v1/images?wait=20&name={name}", headers=headers, body=data)

    first, second, again = post(alice, "alice.jpg"), post(bob, "bob.jpg"), post(alice, "other.jpg")

    assert first.status_code == second.status_code == again.status_code == 200
    mine, theirs, retried = (json.loads(r.body) for r in (first, second, again))
    assert mine["id"] != theirs["id"]
    assert (mine["name"], theirs["name"]) == ("alice.jpg", "bob.jpg")  # bob never sees alice's file
    assert theirs["label"] == "tench"
    assert retried == mine  # alice's own retry is still her one request


def test_health_and_stats(client, stack, photo):
    client.http.post("/v1/images?wait=0", headers={"Content-Type": "image/jpeg"}, body=photo.path.read_bytes())

    assert client.http.get("/v1/healthz").status_code == 200
    stats = json.loads(client.http.get("/v1/stats").body)
    assert stats["queue"]["visible"] + stats["queue"]["in_flight"] == 1
    assert {"running", "desired"} <= stats["workers"].keys()
