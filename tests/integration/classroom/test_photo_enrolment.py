"""A face enrolled over HTTP: the web tier stores the photo, the face function (real dlib engine, on
moto) enrols it and records the outcome, and the student is recognised in the next video."""

from __future__ import annotations

import dataclasses
import io
import json

import pytest
from chalice.test import Client
from PIL import Image

from iraas import aws
from iraas.classroom.enrolments import student_metadata
from iraas.local.lambda_runner import LocalContext
from tests.support.events import s3_event

pytestmark = pytest.mark.slow

KIT = "Kit Harington"
KIT_PATH = "/v1/students/Kit%20Harington"


@pytest.fixture
def client(web_app):
    from iraas.web.project import ProjectGateway

    with Client(web_app.app) as client:
        client.http._local_gateway = ProjectGateway(web_app.app, client.http._config)  # {name} decoded
        yield client


@pytest.fixture
def s3(face_settings):
    return aws.client(face_settings, "s3")


def post_photo(client, path: str, data: bytes, content_type: str = "image/jpeg") -> str:
    answer = client.http.post(path, headers={"Content-Type": content_type}, body=data)
    assert answer.status_code == 202, answer.body
    enrolment: str = answer.json_body["enrolment"]
    return enrolment


def photo_event(s3, settings, enrolment: str) -> dict:
    """The ObjectCreated event of the photo the web tier stored for ``enrolment``."""
    [photo] = s3.list_objects_v2(Bucket=settings.video_input_bucket, Prefix=f"enrolments/{enrolment}.")["Contents"]
    return s3_event(settings.video_input_bucket, photo["Key"], photo["Size"])


def invoke(handler, event) -> dict:
    return handler.lambda_handler(event, LocalContext("FaceRecognitionFunction", 300))


def no_face_jpeg() -> bytes:
    """A wall and a window: edges for the detector to look at, and no face."""
    image = Image.new("RGB", (640, 480), (150, 140, 120))
    image.paste((40, 60, 90), (380, 80, 560, 300))
    out = io.BytesIO()
    image.save(out, "JPEG")
    return out.getvalue()


def test_a_one_face_photo_enrols_the_student_who_is_then_recognised_in_a_video(
    client, s3, face_handler, face_settings, enrolled_class, classroom
):
    kit_video = s3_event(face_settings.video_input_bucket, "kit.mp4")
    s3.upload_file(str(classroom.videos["kit"]), face_settings.video_input_bucket, "kit.mp4")
    invoke(face_handler, kit_video)
    assert s3.get_object(Bucket=face_settings.video_output_bucket, Key="kit.csv")["Body"].read() == b"name,major,year\n"

    enrolment = post_photo(client, f"{KIT_PATH}/photos", classroom.enrolled[KIT][0].read_bytes())
    event = photo_event(s3, face_settings, enrolment)
    answer = invoke(face_handler, event)

    expected = {"enrolment": enrolment, "student": KIT, "status": "enrolled", "faces": 1, "error": None}
    assert answer == {"videos": [], "enrolments": [expected]}
    assert len(enrolled_class.faces()[KIT]) == 1
    got = client.http.get(f"/v1/enrolments/{enrolment}")
    assert (got.status_code, got.json_body) == (200, expected)
    listed = {s["name"]: s["faces"] for s in client.http.get("/v1/students").json_body["students"]}
    assert listed == {"Barack Obama": 2, "Joe Biden": 1, KIT: 1}

    invoke(face_handler, event)  # S3 delivers at least once: the same photo again is one descriptor
    assert len(enrolled_class.faces()[KIT]) == 1

    invoke(face_handler, kit_video)
    csv = s3.get_object(Bucket=face_settings.video_output_bucket, Key="kit.csv")["Body"].read().decode()
    assert csv == classroom.expected_csv["kit"]


def test_the_photo_is_looked_at_within_the_pixel_cap_and_its_face_is_still_recognised_in_a_video(
    client, s3, face_handler, face_settings, enrolled_class, classroom, monkeypatch
):
    from tests.support.engines import RecordingEngine

    cap = 300_000  # Kit's photo is 1200 x 599
    monkeypatch.setattr(face_handler, "SETTINGS", dataclasses.replace(face_handler.SETTINGS, max_detect_pixels=cap))
    monkeypatch.setattr(face_handler, "ENGINE", recording := RecordingEngine())
    enrolment = post_photo(client, f"{KIT_PATH}/photos", classroom.enrolled[KIT][0].read_bytes())

    [outcome] = invoke(face_handler, photo_event(s3, face_settings, enrolment))["enrolments"]

    assert (outcome["status"], outcome["faces"]) == ("enrolled", 1)
    assert len(recording.shapes) == 1 and 0 < recording.largest() <= cap  # scaled down before detection
    s3.upload_file(str(classroom.videos["kit"]), face_settings.video_input_bucket, "kit.mp4")
    invoke(face_handler, s3_event(face_settings.video_input_bucket, "kit.mp4"))
    csv = s3.get_object(Bucket=face_settings.video_output_bucket, Key="kit.csv")["Body"].read().decode()
    assert csv == classroom.expected_csv["kit"]


@pytest.mark.parametrize("photo, faces, message", [
    ("no face", 0, "found 0 faces; an enrolment photo must show exactly one"),
    ("two faces", 2, "found 2 faces; an enrolment photo must show exactly one"),
])
def test_a_photo_without_exactly_one_face_records_a_failure_and_enrols_nothing(
    photo, faces, message, client, s3, face_handler, face_settings, enrolled_class, faces_dir
):
    data = no_face_jpeg() if photo == "no face" else (faces_dir / "group" / "face_recognition-two_people.jpg").read_bytes()
    enrolment = post_photo(client, f"{KIT_PATH}/photos", data)

    [outcome] = invoke(face_handler, photo_event(s3, face_settings, enrolment))["enrolments"]

    assert (outcome["status"], outcome["faces"], outcome["student"]) == ("failed", faces, KIT)
    assert message in outcome["error"]
    assert KIT not in enrolled_class.faces()
    got = client.http.get(f"/v1/enrolments/{enrolment}")
    assert got.status_code == 422 and got.json_body == outcome


def test_objects_the_web_tier_did_not_check_fail_cleanly_or_are_skipped_and_never_raise(
    s3, face_handler, face_settings, enrolled_class, classroom
):
    """Written straight to the bucket (the web tier refuses these): no crash, so no retries."""
    bucket, out = face_settings.video_input_bucket, face_settings.video_output_bucket
    not_an_image, nameless = "1" * 32, "2" * 32
    s3.put_object(Bucket=bucket, Key=f"enrolments/{not_an_image}.jpg", Body=b"not a jpeg", Metadata=student_metadata(KIT))
    s3.put_object(Bucket=bucket, Key=f"enrolments/{nameless}.jpg", Body=classroom.enrolled[KIT][0].read_bytes())
    s3.upload_file(str(classroom.videos["one"]), bucket, "enrolments/lecture.mp4")  # no video here

    answers = [invoke(face_handler, s3_event(bucket, key)) for key in
               (f"enrolments/{not_an_image}.jpg", f"enrolments/{nameless}.jpg", "enrolments/lecture.mp4")]

    outcomes = [a["enrolments"][0] for a in answers]
    assert [(o.get("status"), o.get("student")) for o in outcomes] == [("failed", KIT), ("failed", None), ("skipped", None)]
    assert "not an image we can read" in outcomes[0]["error"] and "names no student" in outcomes[1]["error"]
    assert all(a["videos"] == [] for a in answers)
    written = sorted(o["Key"] for o in s3.list_objects_v2(Bucket=out)["Contents"])
    assert written == [f"enrolments/{not_an_image}.json", f"enrolments/{nameless}.json"]  # no CSV for the video
    assert json.loads(s3.get_object(Bucket=out, Key=written[0])["Body"].read()) == outcomes[0]
    assert KIT not in enrolled_class.faces()


def test_a_student_removed_before_the_photo_is_enrolled_is_not_brought_back(
    client, s3, face_handler, face_settings, enrolled_class, classroom
):
    enrolment = post_photo(client, f"{KIT_PATH}/photos", classroom.enrolled[KIT][0].read_bytes())
    assert client.http.delete(KIT_PATH).status_code == 200

    [outcome] = invoke(face_handler, photo_event(s3, face_settings, enrolment))["enrolments"]

    assert outcome["status"] == "failed" and "no student named 'Kit Harington'" in outcome["error"]
    assert not enrolled_class.exists(KIT)


def test_the_photo_reaches_the_function_through_the_bucket_notification_as_a_video_does(
    client, s3, face_handler, face_settings, enrolled_class, classroom
):
    """The embedded stack's path: moto's own event for the stored photo, handed over unchanged."""
    from iraas.local.provision import physical_name

    sqs = aws.client(face_settings, "sqs")
    queue = sqs.get_queue_url(QueueName=physical_name("iraas", "FaceRecognitionFunctionEvents", 80))["QueueUrl"]
    enrolment = post_photo(client, f"{KIT_PATH}/photos", classroom.enrolled[KIT][0].read_bytes())
    bodies = [json.loads(m["Body"]) for m in sqs.receive_message(QueueUrl=queue, MaxNumberOfMessages=10).get("Messages", [])]
    [event] = [b for b in bodies if "Records" in b]

    [outcome] = invoke(face_handler, event)["enrolments"]

    assert (outcome["enrolment"], outcome["status"]) == (enrolment, "enrolled")
    assert len(enrolled_class.faces()[KIT]) == 1
