"""FaceRecognitionFunction's handler on in-process moto: a video in, the exact CSV out."""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path

import pytest

from harness.videos import make_classroom_video
from iraas import aws
from iraas.local.lambda_runner import LocalContext
from tests.support.events import s3_event

pytestmark = pytest.mark.slow

OBAMA = "obama/face_recognition-obama.jpg"  # the photo the classroom videos show (not an enrolled one)


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



@pytest.fixture
def recording(face_handler):
    """The function's engine replaced by a real dlib engine that records what its detector was given."""
    from tests.support.engines import RecordingEngine

    engine = RecordingEngine()
    face_handler.ENGINE = engine  # the handler module is loaded afresh for each test
    return engine


def report_of(settings, key: str) -> dict:
    from iraas.classroom import keys

    body = aws.client(settings, "s3").get_object(Bucket=settings.video_output_bucket, Key=keys.attendance_json_key(key))
    return json.loads(body["Body"].read())


def still_jpeg(path: Path, faces_dir: Path) -> None:
    from PIL import Image

    # 40 megapixels, the frame limit: OpenCV decoded it as a one-frame video and the detector
    # scanned all of it, about 7 s of function time.
    Image.new("RGB", (8000, 5000), (200, 190, 170)).save(path, "JPEG")


def still_png(path: Path, faces_dir: Path) -> None:
    from PIL import Image

    Image.open(faces_dir / "people" / OBAMA).convert("RGB").save(path, "PNG")


def one_frame(path: Path, faces_dir: Path) -> None:
    make_classroom_video(path, [faces_dir / "people" / OBAMA], frames=1)


def text(path: Path, faces_dir: Path) -> None:
    path.write_text("name,major,year\nBarack Obama,Law,senior\n")


@pytest.mark.parametrize(("key", "make", "reason"), [
    ("still.avi", still_jpeg, "it is a still image (jpeg_pipe), not a video"),
    ("portrait.mov", still_png, "it is a still image (png_pipe), not a video"),
    ("one frame.mp4", one_frame, "it has 1 frame: a video has at least two"),
    ("notes.mp4", text, "FFmpeg cannot read it as a video"),
])
def test_what_is_no_video_by_its_container_is_refused_with_the_reason_and_no_face_is_looked_for(
    key, make, reason, face_handler, face_settings, enrolled_class, recording, faces_dir, tmp_path
):
    path = tmp_path / key
    make(path, faces_dir)

    answer = invoke(face_handler, upload(face_settings, key, path))

    (outcome,) = answer["videos"]
    assert (outcome["reason"], outcome["faces"], outcome["attendance_segments"]) == ("unreadable_video", 0, 0)
    assert outcome["detail"].startswith(reason)
    assert recording.shapes == []  # the detector never ran
    assert csv_of(face_settings, outcome["csv_key"]) == "name,major,year\n"
    report = report_of(face_settings, key)
    assert report["error"]["code"] == "unreadable_video" and report["error"]["message"].startswith(reason)
    assert report["students"] == []


def test_two_frames_are_a_video(face_handler, face_settings, enrolled_class, recording, faces_dir, tmp_path):
    video = make_classroom_video(tmp_path / "two frames.mp4", [faces_dir / "people" / OBAMA], frames=2)

    answer = invoke(face_handler, upload(face_settings, "two frames.mp4", video))

    assert answer["videos"][0]["reason"] is None and answer["videos"][0]["recognised"] == ["Barack Obama"]
    assert csv_of(face_settings, "two frames.csv") == "name,major,year\nBarack Obama,Law,senior\n"
    assert len(recording.shapes) == 1  # the first frame, once


def test_the_detector_looks_at_no_more_pixels_than_the_cap_and_the_csv_is_the_same(
    face_handler, face_settings, enrolled_class, recording, classroom, monkeypatch
):
    cap = 640 * 360  # a quarter of the 1280 x 720 classroom video
    monkeypatch.setattr(face_handler, "SETTINGS", dataclasses.replace(face_handler.SETTINGS, max_detect_pixels=cap))

    answer = invoke(face_handler, upload(face_settings, "two.mp4", classroom.videos["two"]))

    assert recording.shapes == [(360, 640)]  # the first frame, scaled down once
    assert csv_of(face_settings, "two.csv") == classroom.expected_csv["two"]  # both found, both recognised
    assert answer["videos"][0]["faces"] == 2
