"""Keys of the face pipeline, the student records format and the CSV (no AWS, no engine)."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

from iraas.classroom.enrolments import student_metadata, student_of
from iraas.classroom.keys import (
    csv_key,
    enrolment_id_of,
    enrolment_outcome_key,
    enrolment_photo_key,
    is_enrolment_key,
    is_video_key,
    new_enrolment_id,
    upload_key,
)
from iraas.classroom.students import InvalidStudents, StudentRecord, csv_text, parse_students


@pytest.mark.parametrize("key, expected", [
    ("lecture.mp4", "lecture.csv"),
    ("Room 101/monday lecture.MOV", "Room 101/monday lecture.csv"),
    ("a.b.avi", "a.b.csv"),
    ("../../etc/x.mp4", "etc/x.csv"),
    ("/./x.mp4", "x.csv"),
])
def test_the_csv_key_is_the_video_key_with_csv_and_never_climbs(key, expected):
    assert csv_key(key) == expected


def test_only_mp4_mov_and_avi_are_videos():
    assert [k for k in ["a.mp4", "b.MOV", "c.avi", "d.mkv", "e.csv", "mp4"] if is_video_key(k)] == ["a.mp4", "b.MOV", "c.avi"]


def test_an_uploaded_name_is_reduced_to_a_safe_file_name():
    assert upload_key("../../x/Room 7.mp4") == "Room_7.mp4"
    with pytest.raises(ValueError, match="not a video"):
        upload_key("payload.sh")


def test_enrolment_photos_and_outcomes_have_keys_of_the_servers_making_that_no_video_can_take():
    enrolment = new_enrolment_id()
    assert enrolment != new_enrolment_id() and len(enrolment) == 32
    assert enrolment_photo_key(enrolment, "JPEG") == f"enrolments/{enrolment}.jpg"
    assert enrolment_photo_key(enrolment, "PNG") == f"enrolments/{enrolment}.png"
    assert enrolment_outcome_key(enrolment) == f"enrolments/{enrolment}.json"
    assert enrolment_id_of(f"enrolments/{enrolment}.webp") == enrolment
    for other in (f"enrolments/{enrolment}", f"enrolments/{enrolment}.jpg/x", f"x/enrolments/{enrolment}.jpg",
                  "enrolments/notes.txt", f"./enrolments/{enrolment}.jpg"):
        assert enrolment_id_of(other) is None, other
    with pytest.raises(ValueError):
        enrolment_outcome_key("../../status/fleet")
    # The two pipelines never take each other's objects: no uploaded video lands in enrolments/,
    # and a video put there directly is not one (its CSV would be enrolments/x.csv, never an outcome).
    assert upload_key("enrolments/x.mp4") == "x.mp4"
    assert [k for k in ("enrolments/x.mp4", "./enrolments/x.mp4", "x.mp4", "Room/enrolments/x.mp4") if is_video_key(k)] == [
        "x.mp4", "Room/enrolments/x.mp4",
    ]
    assert is_enrolment_key("./enrolments//a.jpg") and not is_enrolment_key("enrolments.mp4")


@pytest.mark.parametrize("name", ["Barack Obama", "Zoë Ångström", "李小龍", "\U0001d518" * 200, "a/b\n=?"])
def test_the_students_name_travels_in_the_photos_ascii_metadata(name):
    metadata = student_metadata(name)
    assert student_of(metadata) == name
    assert all(value.isascii() and len(key) + len(value) < 2048 for key, value in metadata.items())
    assert student_of({}) is None and student_of({"student": "%%%"}) is None


def test_the_csv_has_a_header_then_one_quoted_row_per_student_by_name():
    rows = [StudentRecord("2", "Zoe", "Art, Design", "2"), StudentRecord("1", "Adam", "Physics", "senior")]
    assert csv_text(rows) == 'name,major,year\nAdam,Physics,senior\nZoe,"Art, Design",2\n'
    assert csv_text([]) == "name,major,year\n"


def test_the_course_records_format_is_parsed_and_checked():
    records = parse_students([{"id": 1, "name": " Ada ", "major": "CS", "year": 3}])
    assert records == [StudentRecord("1", "Ada", "CS", "3")]
    with pytest.raises(InvalidStudents, match="names must be unique"):
        parse_students([{"id": i, "name": "Ada", "major": "CS", "year": 3} for i in (1, 2)])
    with pytest.raises(InvalidStudents, match="'year' must be text or a number"):
        parse_students([{"id": 1, "name": "Ada", "major": "CS", "year": None}])


def test_the_web_side_of_the_face_pipeline_imports_no_heavy_engine():
    code = (
        "import json, sys\n"
        "import iraas.classroom.service, iraas.classroom.students, iraas.classroom.keys, iraas.cli.classroom, iraas.cli\n"
        "import iraas.classroom.enrolments\n"
        "print(json.dumps(sorted(m for m in ('numpy', 'cv2', 'dlib', 'torch') if m in sys.modules)))\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert json.loads(out.stdout) == []
