"""iraas/classroom/student_store.py's DynamoDB adapter on moto (template.yaml's StudentsTable).

- An import is written in batches: which students exist is read 100 names a BatchGetItem (the name
  alone: the faces are never read to be written back), new ones are Put 25 a BatchWriteItem, and one
  already in the table is updated in place, keeping its faces. Looking up records asks for at most
  100 names a call, each once. Every call is counted with botocore's event hooks.
- The store and its in-memory twin keep the same contract: what a test sees of the real adapter it
  sees of the twin, so a unit test that uses the twin tests what production does. Records and faces
  apart (importing keeps faces, faces may come first), a listing sorted by name with face counts,
  deletion of both, UnknownStudent for a face of no one.

What moto cannot answer (items or keys left unprocessed, a Scan of small pages) is in
tests/unit/classroom/test_student_store.py, with botocore's Stubber.
"""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Callable
from typing import Any

import pytest

from iraas import aws
from iraas.classroom.student_store import DynamoStudentStore, InMemoryStudentStore, StudentStore
from iraas.classroom.students import (
    MAX_STUDENTS,
    InvalidStudents,
    StudentRecord,
    StudentSummary,
    UnknownStudent,
    parse_students,
)


@pytest.fixture
def dynamodb(face_settings) -> Any:
    """The shared DynamoDB client, on moto."""
    return aws.client(face_settings, "dynamodb")


@pytest.fixture
def table(face_settings) -> str:
    return str(face_settings.students_table)


class Calls:
    """Each call the client makes from now on: how many of each, and each one's parameters."""

    def __init__(self, client: Any) -> None:
        self.count: Counter[str] = Counter()
        self.params: list[tuple[str, dict[str, Any]]] = []
        client.meta.events.register("provide-client-params.dynamodb", self._seen)

    def _seen(self, event_name: str, params: dict[str, Any], **_: object) -> None:
        operation = event_name.rsplit(".", 1)[1]
        self.count[operation] += 1
        self.params.append((operation, params))

    def of(self, operation: str) -> list[dict[str, Any]]:
        return [params for name, params in self.params if name == operation]


def roster(count: int) -> list[dict]:
    return [{"id": str(n), "name": f"Student {n:05}", "major": "Law", "year": "1"} for n in range(count)]


def item(dynamodb: Any, table: str, name: str) -> dict[str, Any]:
    return dynamodb.get_item(TableName=table, Key={"name": {"S": name}}, ConsistentRead=True)["Item"]


# ---- the DynamoDB adapter: batches and their bounds ------------------------------------------


def test_five_thousand_new_students_are_written_in_two_hundred_calls(dynamodb, table) -> None:
    calls = Calls(dynamodb)

    assert DynamoStudentStore(dynamodb, table).put_students(parse_students(roster(MAX_STUDENTS))) == MAX_STUDENTS

    assert dict(calls.count) == {"BatchGetItem": MAX_STUDENTS // 100, "BatchWriteItem": math.ceil(MAX_STUDENTS / 25)}
    for get in calls.of("BatchGetItem"):
        [(_, request)] = get["RequestItems"].items()
        assert len(request["Keys"]) <= 100
        assert request["ProjectionExpression"] == "#n"  # the faces are never read to be written back
    assert all(len(puts) <= 25 for write in calls.of("BatchWriteItem") for puts in write["RequestItems"].values())
    assert dynamodb.scan(TableName=table, Select="COUNT", ConsistentRead=True)["Count"] == MAX_STUDENTS


def test_students_already_in_the_table_are_updated_in_place_and_keep_their_faces(dynamodb, table) -> None:
    face = {"BS": [b"\x01" * 512]}
    dynamodb.put_item(TableName=table, Item={"name": {"S": "Student 00007"}, "faces": face})  # enrolled before the import
    dynamodb.put_item(TableName=table, Item={"name": {"S": "Student 00008"}, "id": {"S": "8"}, "major": {"S": "Art"}})
    calls = Calls(dynamodb)

    DynamoStudentStore(dynamodb, table).put_students(parse_students(roster(100)))

    assert calls.count == {"BatchGetItem": 1, "BatchWriteItem": 4, "UpdateItem": 2}
    assert item(dynamodb, table, "Student 00007") == {
        "name": {"S": "Student 00007"}, "faces": face, "id": {"S": "7"}, "major": {"S": "Law"}, "year": {"S": "1"},
    }
    assert item(dynamodb, table, "Student 00008")["major"] == {"S": "Law"}
    put = [r["PutRequest"]["Item"]["name"]["S"]
           for write in calls.of("BatchWriteItem") for requests in write["RequestItems"].values() for r in requests]
    assert "Student 00007" not in put and "Student 00008" not in put  # a Put would replace the item and its faces
    assert dynamodb.scan(TableName=table, Select="COUNT", ConsistentRead=True)["Count"] == 100


def test_more_than_100_names_are_asked_for_in_batches_of_at_most_100(dynamodb, table) -> None:
    names = [f"student-{i:03d}" for i in range(250)]
    records = [StudentRecord(id=f"id-{n}", name=n, major="Law", year="4") for n in names]
    store = DynamoStudentStore(dynamodb, table)
    store.put_students(records)
    calls = Calls(dynamodb)

    found = store.records(names)

    assert found == {r.name: r for r in records}
    asked = [[key["name"]["S"] for key in request["Keys"]]
             for get in calls.of("BatchGetItem") for request in get["RequestItems"].values()]
    assert sorted(len(call) for call in asked) == [50, 100, 100]
    assert sorted(n for call in asked for n in call) == names  # each name asked for once


# ---- the store and its twin: one contract -----------------------------------------------------


ADA = StudentRecord("1", "Ada Lovelace", "Maths", "1843")
ALAN = StudentRecord("2", "Alan Turing", "Maths", "1936")
FACE, OTHER_FACE = b"\x01" * 512, b"\x02" * 512


@pytest.fixture(params=["dynamodb", "in-memory"])
def students(request, stack) -> StudentStore:
    if request.param == "dynamodb":
        from iraas.classroom.settings import load_face_settings

        settings = load_face_settings()
        return DynamoStudentStore(aws.client(settings, "dynamodb"), str(settings.students_table))
    return InMemoryStudentStore()


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
