"""Each store and its in-memory twin keep the same contract: what one test sees of the real adapter
(on moto, provisioned from template.yaml) it sees of the twin, so a unit test that uses a twin
tests what production does.

- ResultStore: not found until stored; the first answer is final.
- StudentStore: records and faces apart (importing keeps faces, faces may come first), a listing
  sorted by name with face counts, deletion of both, UnknownStudent for a face of no one.
- StatusStore: nobody published until someone does; heartbeats by worker, a removed one gone.
"""

from __future__ import annotations

from collections.abc import Callable

import pytest

from iraas import aws
from iraas.classroom.student_store import DynamoStudentStore, InMemoryStudentStore, StudentStore
from iraas.classroom.students import InvalidStudents, StudentRecord, StudentSummary, UnknownStudent
from iraas.images.jobs import ImageResult, new_id
from iraas.images.results import InMemoryResultStore, ResultStore, S3ResultStore
from iraas.scaling.status import (
    NOBODY_PUBLISHED,
    FleetStatus,
    Heartbeat,
    InMemoryStatusStore,
    S3StatusStore,
    StatusStore,
)

ADA = StudentRecord("1", "Ada Lovelace", "Maths", "1843")
ALAN = StudentRecord("2", "Alan Turing", "Maths", "1936")
FACE, OTHER_FACE = b"\x01" * 512, b"\x02" * 512


@pytest.fixture(params=["s3", "in-memory"])
def results(request, stack) -> ResultStore:
    if request.param == "s3":
        return S3ResultStore(aws.client(stack, "s3"), stack.image_output_bucket)
    return InMemoryResultStore()


@pytest.fixture(params=["dynamodb", "in-memory"])
def students(request, stack) -> StudentStore:
    if request.param == "dynamodb":
        from iraas.classroom.settings import load_face_settings

        settings = load_face_settings()
        return DynamoStudentStore(aws.client(settings, "dynamodb"), str(settings.students_table))
    return InMemoryStudentStore()


@pytest.fixture(params=["s3", "in-memory"])
def status(request, stack) -> StatusStore:
    if request.param == "s3":
        return S3StatusStore(aws.client(stack, "s3"), stack.image_output_bucket)
    return InMemoryStatusStore()


def done(request_id: str, name: str = "cat.jpg", label: str = "tabby") -> ImageResult:
    return ImageResult(id=request_id, name=name, status="done", label=label)


def test_a_result_is_found_once_stored_and_the_first_answer_is_final(results: ResultStore) -> None:
    request_id = new_id()
    assert results.find(request_id, "cat.jpg") is None

    first, second = done(request_id), done(request_id, label="tiger cat")
    assert results.put_first(first, first.to_json()) is True
    assert results.put_first(second, second.to_json()) is False

    found = results.find(request_id, "cat.jpg")
    assert found is not None and found.label == "tabby"
    assert results.find(request_id, "dog.jpg") is None  # the same id for another file is another answer


def test_importing_records_keeps_faces_and_faces_may_come_before_a_record(students: StudentStore) -> None:
    students.add_faces("Alan Turing", [FACE])  # the CLI may enrol before the records are imported
    assert students.put_students([ADA, ALAN, StudentRecord("1", "Ada Lovelace", "Computing", "1843")]) == 2
    students.add_faces("Ada Lovelace", [FACE, OTHER_FACE, FACE])  # a set: the same descriptor once

    listed, truncated = students.summaries()
    assert not truncated
    assert listed == [
        StudentSummary("1", "Ada Lovelace", "Computing", "1843", 2),  # the last record of a name wins
        StudentSummary("2", "Alan Turing", "Maths", "1936", 1),
    ]
    assert {name: sorted(faces) for name, faces in students.faces().items()} == {
        "Ada Lovelace": [FACE, OTHER_FACE], "Alan Turing": [FACE],
    }
    assert students.records(["Alan Turing", "Grace Hopper"]) == {"Alan Turing": ALAN}


def test_a_listing_past_its_limit_says_so(students: StudentStore) -> None:
    students.put_students([ADA, ALAN])
    listed, truncated = students.summaries(limit=1)
    assert len(listed) == 1 and truncated


def test_deleting_a_student_takes_record_and_faces(students: StudentStore) -> None:
    students.put_students([ADA])
    students.add_faces("Ada Lovelace", [FACE])
    assert students.exists("Ada Lovelace")

    assert students.delete("Ada Lovelace") is True
    assert not students.exists("Ada Lovelace")
    assert students.faces() == {} and students.summaries() == ([], False)
    assert students.delete("Ada Lovelace") is False


@pytest.mark.parametrize("check", [
    lambda store: store.add_faces("Nobody", [FACE], must_exist=True),
    lambda store: store.add_faces("", [FACE]),
])
def test_a_face_for_no_one_is_refused(students: StudentStore, check: Callable[[StudentStore], None]) -> None:
    with pytest.raises((UnknownStudent, InvalidStudents)):
        check(students)
    assert students.faces() == {}


def test_heartbeats_are_kept_by_worker_and_removed_with_it(status: StatusStore) -> None:
    assert status.heartbeats() == {}
    status.beat(Heartbeat("local-1", busy=True, idle_since=None, updated_at=10.0))
    status.beat(Heartbeat("local-2", busy=False, idle_since=5.0, updated_at=10.0))
    status.beat(Heartbeat("local-1", busy=False, idle_since=11.0, updated_at=12.0))  # replaces its last

    assert status.heartbeats() == {
        "local-1": Heartbeat("local-1", False, 11.0, 12.0), "local-2": Heartbeat("local-2", False, 5.0, 10.0),
    }
    status.remove("local-2")
    assert list(status.heartbeats()) == ["local-1"]


def test_the_fleet_is_nobodys_until_published(status: StatusStore) -> None:
    assert status.fleet() == NOBODY_PUBLISHED
    published = FleetStatus(running=2, desired=3, fleet="local", updated_at=20.0, max=4, capped_by="cpu")
    status.publish(published)
    assert status.fleet() == published


def test_reading_the_heartbeats_from_s3_costs_a_listing_and_a_get_per_worker(stack) -> None:
    s3 = aws.client(stack, "s3")
    store = S3StatusStore(s3, stack.image_output_bucket)
    for n in range(3):
        store.beat(Heartbeat(f"local-{n}", busy=False, idle_since=1.0, updated_at=2.0))
    calls: list[str] = []

    def count(event_name: str, **_: object) -> None:
        calls.append(event_name.rsplit(".", 1)[-1])

    s3.meta.events.register("before-call.s3", count)
    try:
        assert len(store.heartbeats()) == 3
    finally:
        s3.meta.events.unregister("before-call.s3", count)
    assert sorted(calls) == ["GetObject"] * 3 + ["ListObjectsV2"]
