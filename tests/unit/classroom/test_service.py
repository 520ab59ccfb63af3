"""iraas/classroom/service.py: the classroom's web use cases over the student store's in-memory twin: what each answers, and
the domain error (never an HTTP status) each raises for a caller's mistake."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from iraas.classroom.service import ClassroomService
from iraas.classroom.settings import FaceSettings
from iraas.classroom.student_store import InMemoryStudentStore
from iraas.classroom.students import MAX_STUDENTS, InvalidStudents, TooManyStudents
from iraas.errors import InvalidRequest, NotConfigured, NotFound, TooLarge


def settings(**resources: str | None) -> FaceSettings:
    names = {"video_input_bucket": None, "video_output_bucket": None, "students_table": "students", **resources}
    return FaceSettings(region="us-east-1", endpoint_url=None, home=Path("/nonexistent"), **names)  # type: ignore[arg-type]


@pytest.fixture
def store() -> InMemoryStudentStore:
    return InMemoryStudentStore()


@pytest.fixture
def classroom(store: InMemoryStudentStore) -> ClassroomService:
    return ClassroomService(settings(), students=store)


ROSTER = [{"id": 1, "name": "Ada Lovelace", "major": "Maths", "year": 1843},
          {"id": "2", "name": "Alan Turing", "major": "Maths", "year": "1936"}]


def test_students_are_imported_listed_and_removed(classroom: ClassroomService, store: InMemoryStudentStore) -> None:
    assert classroom.import_students(json.dumps(ROSTER)) == {"imported": 2, "new": 2, "changed": 0, "unchanged": 0}
    store.add_faces("Alan Turing", [b"\x01" * 512])

    listed = classroom.list_students()
    assert listed == {"truncated": False, "students": [
        {"id": "1", "name": "Ada Lovelace", "major": "Maths", "year": "1843", "faces": 0},
        {"id": "2", "name": "Alan Turing", "major": "Maths", "year": "1936", "faces": 1},
    ]}
    classroom.delete_student("Alan Turing")
    assert [s["name"] for s in classroom.list_students()["students"]] == ["Ada Lovelace"]


def test_removing_a_student_who_is_not_there_is_not_found(classroom: ClassroomService) -> None:
    with pytest.raises(NotFound) as missing:
        classroom.delete_student("Grace Hopper")
    assert missing.value.code == "not_found" and "Grace Hopper" in missing.value.message


@pytest.mark.parametrize(
    ("body", "error", "code"),
    [
        ("not json", InvalidStudents, "invalid_students"),
        (json.dumps([{"id": 1, "name": "Ada"}]), InvalidStudents, "invalid_students"),
        (json.dumps([{"id": n, "name": f"s{n}", "major": "m", "year": 1} for n in range(MAX_STUDENTS + 1)]),
         TooManyStudents, "too_many_students"),
    ],
)
def test_a_body_that_is_not_a_roster_is_refused_and_nothing_is_written(
    classroom: ClassroomService, store: InMemoryStudentStore, body: str, error: type, code: str
) -> None:
    with pytest.raises(error) as refused:
        classroom.import_students(body)
    assert refused.value.code == code
    assert isinstance(refused.value, InvalidRequest if error is InvalidStudents else TooLarge)
    assert store.summaries() == ([], False)


def test_a_photo_for_a_student_who_is_not_there_is_not_found_before_anything_is_stored(
    store: InMemoryStudentStore,
) -> None:
    service = ClassroomService(settings(video_input_bucket="videos"), students=store)
    png = bytes.fromhex(
        "89504e470d0a1a0a0000000d4948445200000001000000010802000000907753de"
        "0000000c4944415408d763f8ffff3f0005fe02fea7d6a4c50000000049454e44ae426082"
    )
    with pytest.raises(NotFound):
        service.submit_photo("Grace Hopper", png, "image/png")


@pytest.mark.parametrize(
    ("call", "needs"),
    [
        (lambda c: c.list_students(), "IRAAS_STUDENTS_TABLE"),
        (lambda c: c.submit_video("anonymous", "lecture.mp4", b"\0" * 16, "video/mp4"), "IRAAS_VIDEO_INPUT_BUCKET"),
        (lambda c: c.find_csv("anonymous", "0" * 32), "IRAAS_VIDEO_OUTPUT_BUCKET"),
        (lambda c: c.list_videos("anonymous"), "IRAAS_VIDEO_INPUT_BUCKET"),
        (lambda c: c.find_video("lecture.mp4"), "IRAAS_VIDEO_INPUT_BUCKET"),
    ],
)
def test_a_deployment_without_the_classroom_says_which_resource_is_missing(call, needs: str) -> None:
    bare = ClassroomService(settings(students_table=None), students=InMemoryStudentStore())
    with pytest.raises(NotConfigured) as refused:
        call(bare)
    assert refused.value.code == "not_configured" and needs in refused.value.message


@pytest.mark.parametrize(
    ("name", "body", "content_type", "code"),
    [
        ("lecture.mp4", b"", "video/mp4", "no_file"),
        ("notes.txt", b"\0" * 16, "text/plain", "not_a_video"),
        ("x" * 300 + ".mp4", b"\0" * 16, "video/mp4", "bad_name"),
    ],
)
def test_a_video_that_cannot_be_taken_is_an_invalid_request(name: str, body: bytes, content_type: str, code: str) -> None:
    service = ClassroomService(settings(video_input_bucket="videos", video_output_bucket="csvs"))
    with pytest.raises(InvalidRequest) as refused:
        service.submit_video("anonymous", name, body, content_type)
    assert refused.value.code == code


def test_an_id_the_service_never_makes_is_not_found() -> None:
    service = ClassroomService(settings(video_output_bucket="csvs"), students=InMemoryStudentStore())
    for find in (lambda: service.find_csv("anonymous", "../etc/passwd"), lambda: service.find_enrolment("nope")):
        with pytest.raises(NotFound):
            find()
