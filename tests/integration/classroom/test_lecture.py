"""iraas/classroom/lecture.py through the face function's handler, on in-process moto: a lecture
video in, the first-frame CSV as before, then its segments queued, observed one invocation each
(Lambda's SQS trigger, batches of one), and the report merged by the last, once.

The lectures are made by harness/lectures.py from the shared photos, so each test knows exactly who
is on screen when."""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path

import pytest

from iraas import aws
from iraas.classroom import keys, lecture
from iraas.classroom.run_store import DynamoRunStore
from iraas.local.lambda_runner import LocalContext
from tests.support.events import s3_event
from tests.support.segments import run_segments

pytestmark = pytest.mark.slow

PEOPLE = {
    "Barack Obama": "obama/face_recognition-obama.jpg",
    "Joe Biden": "biden/face_recognition-biden2.jpg",
    "stranger": "paul_rudd/facenet-pytorch-1.jpg",
}


def invoke(handler, event) -> dict:
    return handler.lambda_handler(event, LocalContext("FaceRecognitionFunction", 300))


def report_of(settings, key: str) -> dict:
    body = aws.client(settings, "s3").get_object(Bucket=settings.video_output_bucket, Key=keys.attendance_json_key(key))
    return json.loads(body["Body"].read())


@pytest.fixture
def lecture_video(faces_dir: Path, tmp_path: Path):
    from harness.lectures import Appearance, make_lecture

    people = faces_dir / "people"

    def make(name: str, appearances: dict[str, list[tuple]], duration_s: float, **options) -> Path:
        return make_lecture(
            tmp_path / name,
            [Appearance(people / PEOPLE[who], *span) for who, spans in appearances.items() for span in spans],
            duration_s, **options,
        )

    return make


def test_a_lecture_fanned_out_in_segments_gives_who_was_there_from_when_to_when(
    face_handler, face_settings, enrolled_class, lecture_video, monkeypatch
):
    monkeypatch.setattr(face_handler, "SETTINGS", dataclasses.replace(face_settings, segment_s=8.0))
    video = lecture_video("monday.mp4", {
        "Barack Obama": [(0.0, 24.0, 0, ((12.0, 15.0),))],  # there all along, looking away at 12-15 s
        "Joe Biden": [(6.0, 24.0, 1)],  # walks in at 6 s
        "stranger": [(10.0, 17.0, 2)],  # an unenrolled person for 7 s
    }, duration_s=24.0)
    s3 = aws.client(face_settings, "s3")
    s3.upload_file(str(video), face_settings.video_input_bucket, "monday.mp4")

    answer = invoke(face_handler, s3_event(face_settings.video_input_bucket, "monday.mp4", video.stat().st_size))

    assert answer["videos"][0]["attendance_segments"] == 3  # 0-8, 8-16, 16-24
    csv = s3.get_object(Bucket=face_settings.video_output_bucket, Key="monday.csv")["Body"].read().decode()
    assert csv == "name,major,year\nBarack Obama,Law,senior\n"  # the first frame, as before
    segments = run_segments(face_handler, face_handler.SETTINGS)
    assert [s["segments"][0]["merged"] for s in segments] == [False, False, True]

    report = report_of(face_settings, "monday.mp4")
    by_name = {s["name"]: s for s in report["students"]}
    assert set(by_name) == {"Barack Obama", "Joe Biden"}
    obama, biden = by_name["Barack Obama"], by_name["Joe Biden"]
    assert (obama["first_seen_s"], obama["last_seen_s"]) == (0.0, 23.0)
    assert obama["spans"] == [[0.0, 12.0], [15.0, 24.0]]  # looking away, within one sample
    assert abs(biden["first_seen_s"] - 6.0) <= 1.0 and biden["last_seen_s"] == 23.0
    assert report["unknown_faces"] == 1 and abs(report["unknown"][0]["first_seen_s"] - 10.0) <= 1.0
    assert report["absent"] == ["Kit Harington"]  # enrolled, never seen
    assert (report["frames_sampled"], report["duration_s"], report["missing_spans"]) == (24, 24.0, [])
    crop = s3.get_object(Bucket=face_settings.video_output_bucket, Key=keys.unknown_crop_key("monday.mp4", 0))
    assert crop["ContentType"] == "image/jpeg" and crop["Body"].read()[:2] == b"\xff\xd8"
    rows = s3.get_object(Bucket=face_settings.video_output_bucket, Key="monday.attendance.csv")["Body"].read().decode()
    assert rows.splitlines()[0] == "name,id,major,year,first_seen_s,last_seen_s,present_s,share,status"
    assert [r.split(",")[0] for r in rows.splitlines()[1:]] == ["Barack Obama", "Joe Biden"]
    run = DynamoRunStore(aws.client(face_settings, "dynamodb"), face_settings.runs_table).get(
        keys.run_id(face_settings.video_input_bucket, "monday.mp4", s3.head_object(
            Bucket=face_settings.video_input_bucket, Key="monday.mp4")["ETag"]))
    assert run is not None and (run.done, run.missing, run.merges) == ({0, 1, 2}, set(), 1)


def test_a_segment_that_keeps_failing_is_retried_then_named_missing_and_the_report_is_still_made(
    face_handler, face_settings, enrolled_class, lecture_video, monkeypatch
):
    monkeypatch.setattr(face_handler, "SETTINGS", dataclasses.replace(face_settings, segment_s=6.0))
    video = lecture_video("tuesday.mp4", {"Barack Obama": [(0.0, 12.0, 0)]}, duration_s=12.0)
    aws.client(face_settings, "s3").upload_file(str(video), face_settings.video_input_bucket, "tuesday.mp4")
    observe = lecture.observe
    tries: list[int] = []

    def broken_second_segment(settings, task, engine, store):
        if task.index == 1:
            tries.append(task.index)
            raise RuntimeError("the segment's frames could not be decoded")
        return observe(settings, task, engine, store)

    monkeypatch.setattr(lecture, "observe", broken_second_segment)
    invoke(face_handler, s3_event(face_settings.video_input_bucket, "tuesday.mp4", video.stat().st_size))
    run_segments(face_handler, face_handler.SETTINGS)

    assert len(tries) == face_settings.segment_max_receives  # retried by the queue, then given up on
    report = report_of(face_settings, "tuesday.mp4")
    assert report["missing_spans"] == [[6.0, 12.0]]
    (obama,) = report["students"]
    assert (obama["first_seen_s"], obama["last_seen_s"]) == (0.0, 5.0)
    assert report["frames_sampled"] == 6


def test_a_repeated_event_rewrites_the_same_report(face_handler, face_settings, enrolled_class, lecture_video):
    video = lecture_video("wednesday.mp4", {"Joe Biden": [(2.0, 8.0, 0)]}, duration_s=8.0)
    aws.client(face_settings, "s3").upload_file(str(video), face_settings.video_input_bucket, "wednesday.mp4")
    event = s3_event(face_settings.video_input_bucket, "wednesday.mp4", video.stat().st_size)
    reports = []
    for _ in range(2):
        invoke(face_handler, event)
        run_segments(face_handler, face_handler.SETTINGS)
        reports.append(report_of(face_settings, "wednesday.mp4"))
    assert reports[0] == reports[1]
    (biden,) = reports[0]["students"]
    assert abs(biden["first_seen_s"] - 2.0) <= 1.0 and biden["last_seen_s"] == 7.0


def test_a_still_image_named_like_a_video_gets_a_report_that_says_why(face_handler, face_settings, enrolled_class, tmp_path):
    from PIL import Image

    still = tmp_path / "photo.avi"
    Image.new("RGB", (640, 480), "white").save(still, "JPEG")
    aws.client(face_settings, "s3").upload_file(str(still), face_settings.video_input_bucket, "photo.avi")
    invoke(face_handler, s3_event(face_settings.video_input_bucket, "photo.avi", still.stat().st_size))
    report = report_of(face_settings, "photo.avi")
    assert report["error"]["code"] == "unreadable_video" and report["students"] == []
    assert run_segments(face_handler, face_handler.SETTINGS) == []  # nothing was queued


def test_a_video_over_the_duration_limit_still_gets_its_first_frame_csv_and_a_report_that_says_why(
    face_handler, face_settings, enrolled_class, classroom, monkeypatch
):
    monkeypatch.setattr(face_handler, "SETTINGS", dataclasses.replace(face_handler.SETTINGS, max_video_seconds=1.0))
    video = classroom.videos["one"]  # 12 frames at 10 fps: 1.2 s
    s3 = aws.client(face_settings, "s3")
    s3.upload_file(str(video), face_settings.video_input_bucket, "long.mp4")

    answer = invoke(face_handler, s3_event(face_settings.video_input_bucket, "long.mp4", video.stat().st_size))

    assert answer["videos"][0]["reason"] is None and answer["videos"][0]["attendance_segments"] == 0
    assert s3.get_object(Bucket=face_settings.video_output_bucket, Key="long.csv")["Body"].read().decode() == (
        classroom.expected_csv["one"])
    report = report_of(face_settings, "long.mp4")
    assert report["error"] == {"code": "unreadable_video", "message": "it lasts 1.2 s, over the limit of 1 s"}
    assert run_segments(face_handler, face_handler.SETTINGS) == []


def test_every_sample_is_detected_within_the_pixel_cap_and_the_report_is_the_same(
    face_handler, face_settings, enrolled_class, lecture_video, monkeypatch
):
    from tests.support.engines import RecordingEngine

    cap = 640 * 360  # a quarter of the 1280 x 720 lecture
    monkeypatch.setattr(face_handler, "SETTINGS", dataclasses.replace(face_handler.SETTINGS, max_detect_pixels=cap))
    monkeypatch.setattr(face_handler, "ENGINE", recording := RecordingEngine())
    video = lecture_video("thursday.mp4", {"Barack Obama": [(0.0, 8.0, 0)], "Joe Biden": [(3.0, 8.0, 1)]}, duration_s=8.0)
    aws.client(face_settings, "s3").upload_file(str(video), face_settings.video_input_bucket, "thursday.mp4")

    invoke(face_handler, s3_event(face_settings.video_input_bucket, "thursday.mp4", video.stat().st_size))
    run_segments(face_handler, face_handler.SETTINGS)

    assert set(recording.shapes) == {(360, 640)}  # every sample scaled down before the detector saw it
    assert len(recording.shapes) == 1 + 8  # the first frame, then a sample a second
    report = report_of(face_settings, "thursday.mp4")
    by_name = {s["name"]: s for s in report["students"]}
    assert set(by_name) == {"Barack Obama", "Joe Biden"} and report["unknown_faces"] == 0
    assert (by_name["Barack Obama"]["first_seen_s"], by_name["Barack Obama"]["last_seen_s"]) == (0.0, 7.0)
    assert abs(by_name["Joe Biden"]["first_seen_s"] - 3.0) <= 1.0 and by_name["Joe Biden"]["last_seen_s"] == 7.0


@pytest.mark.parametrize("size", [(854, 480), (1280, 720), (1920, 1080)], ids=["480p", "720p", "1080p"])
def test_every_field_of_the_report_is_right_to_one_sample_at_every_size(
    face_handler, face_settings, enrolled_class, lecture_video, size
):
    video = lecture_video(f"{size[1]}p.mp4", {
        "Barack Obama": [(0.0, 12.0, 0)],
        "Joe Biden": [(3.0, 9.0, 1)],  # comes late, leaves early
        "stranger": [(5.0, 11.0, 2)],
    }, duration_s=12.0, size=size)
    aws.client(face_settings, "s3").upload_file(str(video), face_settings.video_input_bucket, f"{size[1]}p.mp4")
    invoke(face_handler, s3_event(face_settings.video_input_bucket, f"{size[1]}p.mp4", video.stat().st_size))
    run_segments(face_handler, face_handler.SETTINGS)

    report = report_of(face_settings, f"{size[1]}p.mp4")
    by_name = {s["name"]: s for s in report["students"]}
    assert set(by_name) == {"Barack Obama", "Joe Biden"} and report["absent"] == ["Kit Harington"]
    obama, biden = by_name["Barack Obama"], by_name["Joe Biden"]
    assert (obama["first_seen_s"], obama["last_seen_s"], obama["present_s"], obama["share"]) == (0.0, 11.0, 12.0, 1.0)
    assert obama["spans"] == [[0.0, 12.0]] and obama["status"] == "present"  # 12 s of a 6 s minimum (half)
    assert (obama["id"], obama["major"], obama["year"]) == ("1001", "Law", "senior")
    assert abs(biden["first_seen_s"] - 3.0) <= 1.0 and abs(biden["last_seen_s"] - 8.0) <= 1.0
    assert abs(biden["present_s"] - 6.0) <= 1.0 and biden["status"] == "present"
    assert report["unknown_faces"] == 1
    (stranger,) = report["unknown"]
    assert abs(stranger["first_seen_s"] - 5.0) <= 1.0 and abs(stranger["last_seen_s"] - 10.0) <= 1.0
    assert (report["duration_s"], report["sample_every_s"], report["frames_sampled"]) == (12.0, 1.0, 12)
    assert report["video"] == f"{size[1]}p.mp4" and report["missing_spans"] == []


def test_the_issue_lecture_finds_all_eight_students_who_come_in_after_an_empty_first_frame(
    face_handler, face_settings, store, engine, faces_dir, tmp_path
):
    """The report that opened the issue: 52 s of 720p, the room empty for 4 s, then eight enrolled
    students one after another, each for 4 s. The first frame shows nobody (the seed's CSV stays
    empty); the report has all eight, each within one sample."""
    from harness.lectures import Appearance, make_lecture, one_photo_each, portraits
    from iraas.classroom.enrol import enrol_photos
    from iraas.classroom.students import parse_students

    photos = one_photo_each(faces_dir / "people")[:8]
    names = [p.parent.name.replace("_", " ").title() for p in photos]
    store.put_students(parse_students([
        {"id": str(2001 + n), "name": name, "major": "Physics", "year": "junior"} for n, name in enumerate(names)
    ]))
    for name, photo in zip(names, photos, strict=True):
        enrol_photos(store, engine, name, [photo])  # the video shows a head-and-shoulders crop of it
    seats = portraits(photos, engine, tmp_path / "portraits")
    video = make_lecture(tmp_path / "lecture.mp4", [
        Appearance(seat, 4.0 + 6 * n, 8.0 + 6 * n, slot=n) for n, seat in enumerate(seats)
    ], 52.0, (1280, 720), fps=30, slots=8)
    s3 = aws.client(face_settings, "s3")
    s3.upload_file(str(video), face_settings.video_input_bucket, "lecture.mp4")
    invoke(face_handler, s3_event(face_settings.video_input_bucket, "lecture.mp4", video.stat().st_size))
    run_segments(face_handler, face_handler.SETTINGS)

    csv = s3.get_object(Bucket=face_settings.video_output_bucket, Key="lecture.csv")["Body"].read().decode()
    assert csv == "name,major,year\n"  # an empty room in the first frame, as the seed says
    report = report_of(face_settings, "lecture.mp4")
    by_name = {s["name"]: s for s in report["students"]}
    assert sorted(by_name) == sorted(names) and report["absent"] == [] and report["unknown_faces"] == 0
    for n, name in enumerate(names):
        first, last = 4.0 + 6 * n, 7.0 + 6 * n  # on screen 4 s: samples at first .. first + 3
        assert abs(by_name[name]["first_seen_s"] - first) <= 1.0, name
        assert abs(by_name[name]["last_seen_s"] - last) <= 1.0, name
        assert by_name[name]["status"] == "partial"  # 4 s of a 26 s minimum (half of a short lecture)
