"""The classroom page's routes on moto: list and remove students, store a face photo, read its outcome.

No face engine here: the web tier only stores the photo (the face function's side is in
test_photo_enrolment.py).
"""

from __future__ import annotations

import io
import json
import uuid

import pytest
from chalice.test import Client
from PIL import Image

from iraas import aws
from iraas.classroom.enrolments import EnrolmentOutcome, student_of, write_outcome
from iraas.classroom.keys import is_enrolment_id
from iraas.classroom.students import StudentRecord

STUDENTS = [
    {"id": "1002", "name": "Joe Biden", "major": "History, Politics", "year": 4},
    {"id": "1001", "name": "Barack Obama", "major": "Law", "year": "senior"},
    {"id": "1004", "name": "Zoë Ångström", "major": "Physics", "year": "junior"},
]
DESCRIPTOR = bytes(512)  # what a 128-d float32 descriptor takes; the web tier never decodes one


@pytest.fixture
def client(web_app):
    """chalice's test client with the gateway every other runtime uses: path parameters decoded."""
    from iraas.web.project import ProjectGateway

    with Client(web_app.app) as client:
        # API Gateway hands {name} decoded; chalice's own test gateway passes "Barack%20Obama" on.
        client.http._local_gateway = ProjectGateway(web_app.app, client.http._config)
        yield client


@pytest.fixture
def students(client, store):
    answer = client.http.post("/v1/students", headers={"Content-Type": "application/json"}, body=json.dumps(STUDENTS))
    assert answer.status_code == 200
    return store


@pytest.fixture
def small_photos_only(monkeypatch):
    """Photos up to 4 KiB: the limit of image uploads, read on the app's first request."""
    monkeypatch.setenv("IRAAS_MAX_IMAGE_BYTES", "4096")


@pytest.fixture
def s3(face_settings):
    return aws.client(face_settings, "s3")


def jpeg(size: tuple[int, int] = (64, 48)) -> bytes:
    out = io.BytesIO()
    Image.new("RGB", size, (120, 90, 60)).save(out, "JPEG")
    return out.getvalue()


def stored_photos(s3, settings) -> list[dict]:
    listing = s3.list_objects_v2(Bucket=settings.video_input_bucket, Prefix="enrolments/")
    return listing.get("Contents", [])


def test_students_are_listed_by_name_with_how_many_faces_they_have_never_the_faces(client, students):
    students.add_faces("Barack Obama", [DESCRIPTOR, b"\x01" * 512])
    students.add_faces("Anna Faces-First", [DESCRIPTOR])  # enrolled from the CLI before her record

    answer = client.http.get("/v1/students")

    assert answer.status_code == 200
    assert answer.json_body == {
        "students": [
            {"id": "", "name": "Anna Faces-First", "major": "", "year": "", "faces": 1},
            {"id": "1001", "name": "Barack Obama", "major": "Law", "year": "senior", "faces": 2},
            {"id": "1002", "name": "Joe Biden", "major": "History, Politics", "year": "4", "faces": 0},
            {"id": "1004", "name": "Zoë Ångström", "major": "Physics", "year": "junior", "faces": 0},
        ],
        "truncated": False,
    }


def test_a_listing_is_bounded_and_says_when_there_were_more(store):
    store.put_students([StudentRecord(str(n), f"Student {n:02}", "Law", "1") for n in range(12)])

    listed, truncated = store.summaries(limit=5)
    everyone, complete = store.summaries(limit=12)

    assert (len(listed), truncated) == (5, True)
    assert [s.name for s in listed] == sorted(s.name for s in listed)
    assert (len(everyone), complete) == (12, False)


def test_a_student_is_removed_with_their_faces_and_an_unknown_one_is_a_404(client, students):
    students.add_faces("Zoë Ångström", [DESCRIPTOR])

    answer = client.http.delete("/v1/students/Zo%C3%AB%20%C3%85ngstr%C3%B6m")

    assert (answer.status_code, answer.json_body) == (200, {"deleted": "Zoë Ångström"})
    assert "Zoë Ångström" not in students.faces()
    assert [s["name"] for s in client.http.get("/v1/students").json_body["students"]] == ["Barack Obama", "Joe Biden"]
    again = client.http.delete("/v1/students/Zo%C3%AB%20%C3%85ngstr%C3%B6m")
    assert again.status_code == 404
    assert again.json_body["error"]["code"] == "not_found" and "Zoë Ångström" in again.json_body["error"]["message"]


def test_a_photo_is_stored_under_a_key_of_the_servers_making_and_its_enrolment_is_pending(
    client, students, s3, face_settings
):
    data = jpeg()
    # Neither a ?name= nor the student's name can steer the key.
    answer = client.http.post(
        "/v1/students/Zo%C3%AB%20%C3%85ngstr%C3%B6m/photos?name=../../one.mp4",
        headers={"Content-Type": "image/jpeg"}, body=data,
    )

    assert answer.status_code == 202
    enrolment = answer.json_body["enrolment"]
    assert answer.json_body == {"enrolment": enrolment, "status": "pending"} and is_enrolment_id(enrolment)
    assert answer.headers["Location"] == f"/v1/enrolments/{enrolment}"
    [photo] = stored_photos(s3, face_settings)
    assert photo["Key"] == f"enrolments/{enrolment}.jpg"
    stored = s3.get_object(Bucket=face_settings.video_input_bucket, Key=photo["Key"])
    assert stored["Body"].read() == data and stored["ContentType"] == "image/jpeg"
    assert student_of(stored["Metadata"]) == "Zoë Ångström"
    pending = client.http.get(f"/v1/enrolments/{enrolment}")
    assert (pending.status_code, pending.json_body) == (202, {"enrolment": enrolment, "status": "pending"})


def test_a_photo_may_come_as_a_multipart_file_and_keeps_its_format(client, students, s3, face_settings):
    out = io.BytesIO()
    Image.new("RGB", (40, 40), (10, 200, 30)).save(out, "PNG")
    boundary = uuid.uuid4().hex
    body = (
        f'--{boundary}\r\nContent-Disposition: form-data; name="photo"; filename="../me.jpg"\r\n'
        "Content-Type: image/png\r\n\r\n"
    ).encode() + out.getvalue() + f"\r\n--{boundary}--\r\n".encode()

    answer = client.http.post(
        "/v1/students/Joe%20Biden/photos", headers={"Content-Type": f"multipart/form-data; boundary={boundary}"}, body=body,
    )

    assert answer.status_code == 202
    assert [o["Key"] for o in stored_photos(s3, face_settings)] == [f"enrolments/{answer.json_body['enrolment']}.png"]


@pytest.mark.parametrize("path, content_type, body, status, code", [
    ("/v1/students/Nobody%20Here/photos", "image/jpeg", None, 404, "not_found"),
    ("/v1/students/Joe%20Biden/photos", "image/jpeg", b"GIF89a but not really", 400, "not_an_image"),
    ("/v1/students/Joe%20Biden/photos", "image/jpeg", b"", 400, "no_file"),
    ("/v1/students/Joe%20Biden/photos", "text/plain", b"hello", 415, "unsupported_media_type"),
    ("/v1/students/Joe%20Biden/photos", "image/jpeg", b"\xff\xd8" + bytes(5000), 413, "too_large"),
])
def test_a_bad_photo_request_is_refused_and_stores_nothing(
    path, content_type, body, status, code, small_photos_only, client, students, s3, face_settings
):
    answer = client.http.post(path, headers={"Content-Type": content_type}, body=jpeg() if body is None else body)

    assert answer.status_code == status and answer.json_body["error"]["code"] == code
    assert stored_photos(s3, face_settings) == []


def test_an_enrolment_answers_200_once_enrolled_422_if_it_failed_and_404_for_an_id_never_made(
    client, face_settings, s3
):
    enrolled, failed = uuid.uuid4().hex, uuid.uuid4().hex
    write_outcome(s3, face_settings.video_output_bucket,
                  EnrolmentOutcome(enrolled, "Joe Biden", "enrolled", faces=1))
    write_outcome(s3, face_settings.video_output_bucket, EnrolmentOutcome(
        failed, "Joe Biden", "failed", faces=2, error="the photo: found 2 faces; an enrolment photo must show exactly one"
    ))

    ok, bad = client.http.get(f"/v1/enrolments/{enrolled}"), client.http.get(f"/v1/enrolments/{failed}")

    assert (ok.status_code, ok.json_body) == (
        200, {"enrolment": enrolled, "student": "Joe Biden", "status": "enrolled", "faces": 1, "error": None}
    )
    assert bad.status_code == 422 and bad.json_body["status"] == "failed" and "found 2 faces" in bad.json_body["error"]
    for malformed in ("not-an-id", "..%2F..%2Fstatus", enrolled.upper(), enrolled + "0"):
        answer = client.http.get(f"/v1/enrolments/{malformed}")
        assert answer.status_code == 404 and answer.json_body["error"]["code"] == "not_found", malformed
