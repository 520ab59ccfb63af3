"""FaceRecognitionFunction's handler on in-process moto: a video in, the exact CSV out."""

from __future__ import annotations

import json

import pytest

from iraas import aws
from iraas.local.lambda_runner import LocalContext
from tests.support.events import s3_event

pytestmark = pytest.mark.slow


def upload(settings, key: str, path) -> dict:
    s3 = aws.client(settings, "s3")
    s3.upload_file(str(path), settings.video_input_bucket, key)
    return s3_event(settings.video_input_bucket, key, path.stat().st_size)


def csv_of(settings, key: str) -> str:
    return aws.client(settings, "s3").get_object(Bucket=settings.video_output_bucket, Key=key)["Body"].read().decode()


def invoke(handler, event) -> dict:
    return handler.lambda_handler(event, LocalContext("FaceRecognitionFunction", 300))


@pytest.mark.parametrize("video", ["one", "two", "nobody", "unknown"])
def test_a_classroom_video_gives_the_csv_of_the_enrolled_students_in_it(
    video, face_handler, face_settings, enrolled_class, classroom
):
    answer = invoke(face_handler, upload(face_settings, f"{video}.mp4", classroom.videos[video]))

    assert csv_of(face_settings, f"{video}.csv") == classroom.expected_csv[video]
    outcome = answer["videos"][0]
    expected_reason = {"nobody": "no_faces", "unknown": "unknown_faces"}.get(video)
    assert outcome["reason"] == expected_reason
    assert outcome["faces"] == {"one": 1, "two": 2, "nobody": 0, "unknown": 1}[video]


def test_a_key_with_spaces_arrives_quote_plus_encoded_and_its_csv_keeps_the_name(
    face_handler, face_settings, enrolled_class, classroom
):
    event = upload(face_settings, "Room 101/monday lecture.mp4", classroom.videos["two"])
    assert event["Records"][0]["s3"]["object"]["key"] == "Room+101%2Fmonday+lecture.mp4"

    invoke(face_handler, event)

    assert csv_of(face_settings, "Room 101/monday lecture.csv") == classroom.expected_csv["two"]


def test_the_event_moto_delivers_through_the_bucket_notification_works_unchanged(
    stack, face_handler, face_settings, enrolled_class, classroom
):
    """The notification the embedded stack wires: moto's real event, test event first."""
    sqs = aws.client(face_settings, "sqs")
    queue = sqs.get_queue_url(QueueName=_event_queue_name())["QueueUrl"]
    aws.client(face_settings, "s3").upload_file(str(classroom.videos["one"]), face_settings.video_input_bucket, "a b+c.mp4")
    bodies = [m["Body"] for m in sqs.receive_message(QueueUrl=queue, MaxNumberOfMessages=10).get("Messages", [])]
    events = [json.loads(b) for b in bodies if "Records" in json.loads(b)]
    assert len(events) == 1 and len(bodies) == 2  # moto's s3:TestEvent, then the upload

    invoke(face_handler, events[0])

    assert csv_of(face_settings, "a b+c.csv") == classroom.expected_csv["one"]


def _event_queue_name() -> str:
    from iraas.local.provision import physical_name

    return physical_name("iraas", "FaceRecognitionFunctionEvents", 80)


def test_a_repeated_event_rewrites_the_same_csv(face_handler, face_settings, enrolled_class, classroom):
    event = upload(face_settings, "two.mp4", classroom.videos["two"])
    invoke(face_handler, event)
    invoke(face_handler, event)

    listing = aws.client(face_settings, "s3").list_objects_v2(Bucket=face_settings.video_output_bucket)
    assert [o["Key"] for o in listing["Contents"]] == ["two.csv"]
    assert csv_of(face_settings, "two.csv") == classroom.expected_csv["two"]


def test_a_student_enrolled_after_deployment_is_recognised_on_the_next_video(
    face_handler, face_settings, enrolled_class, engine, classroom
):
    from iraas.classroom.enrol import enrol_photos

    event = upload(face_settings, "kit.mp4", classroom.videos["kit"])
    invoke(face_handler, event)
    assert csv_of(face_settings, "kit.csv") == "name,major,year\n"

    enrol_photos(enrolled_class, engine, "Kit Harington", classroom.enrolled["Kit Harington"])
    invoke(face_handler, event)  # same warm function, no reload

    assert csv_of(face_settings, "kit.csv") == classroom.expected_csv["kit"]


def test_bad_content_gives_a_header_only_csv_and_a_reason_never_an_error(
    face_handler, face_settings, enrolled_class, tmp_path
):
    garbage = tmp_path / "broken.mp4"
    garbage.write_bytes(b"this is not a video" * 100)
    answer = invoke(face_handler, upload(face_settings, "broken.mp4", garbage))

    assert csv_of(face_settings, "broken.csv") == "name,major,year\n"
    assert answer["videos"][0]["reason"] == "unreadable_video"


def test_objects_that_are_not_videos_are_skipped_without_a_csv(face_handler, face_settings, enrolled_class, tmp_path):
    notes = tmp_path / "notes.txt"
    notes.write_text("not a video")
    answer = invoke(face_handler, upload(face_settings, "notes.txt", notes))

    assert answer["videos"][0]["reason"] == "not_a_video"
    assert "Contents" not in aws.client(face_settings, "s3").list_objects_v2(Bucket=face_settings.video_output_bucket)
