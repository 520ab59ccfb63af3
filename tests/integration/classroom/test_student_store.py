"""iraas/classroom/student_store.py's DynamoDB adapter on moto (template.yaml's StudentsTable).

- An import reads the records there are 100 names a BatchGetItem (name, id, major and year: the
  faces are never read), writes nothing for a record that is already as given, and writes the new
  and changed ones with UpdateItems that set only the record's fields, 100 a TransactWriteItems:
  never a Put, which would replace the item and the faces in it, even faces enrolled between the
  read and the write. Looking up records asks for at most 100 names a call, each once. Every call
  is counted with botocore's event hooks.
- The store and its in-memory twin keep the same contract: what a test sees of the real adapter it
  sees of the twin, so a unit test that uses the twin tests what production does. Records and faces
  apart (importing keeps faces, faces may come first), what an import counts as new, changed and
  unchanged, a listing sorted by name with face counts, deletion of both, UnknownStudent for a face
  of no one.

What moto cannot answer (keys left unprocessed, transactions cancelled for a conflict, a Scan of
small pages) is in tests/unit/classroom/test_student_store.py, with botocore's Stubber.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable
from typing import Any

import pytest

from iraas import aws
from iraas.classroom.student_store import DynamoStudentStore, InMemoryStudentStore, StudentStore
from iraas.classroom.students import (
    InvalidStudents,
    StudentImport,
    StudentRecord,
    StudentSummary,
    UnknownStudent,
    parse_students,
)

pytestmark = pytest.mark.usefixtures("transactions_copy_each_table_once")  # as the embedded stack's moto


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

RECORD_FIELDS = "#n, #id, major, #year"  # what an import reads of a student: never the faces


def seed(dynamodb: Any, table: str, records: list[StudentRecord]) -> None:
    """The table as an earlier import left it (written by the test, 25 Puts a call)."""
    for start in range(0, len(records), 25):
        dynamodb.batch_write_item(RequestItems={table: [{"PutRequest": {"Item": {
            "name": {"S": r.name}, "id": {"S": r.id}, "major": {"S": r.major}, "year": {"S": r.year},
        }}} for r in records[start : start + 25]]})


def updated(calls: Calls) -> list[list[str]]:
    """The names each TransactWriteItems call updated, call by call (and that each action is an
    Update that sets the record's fields alone)."""
    names = []
    for call in calls.of("TransactWriteItems"):
        assert all(list(action) == ["Update"] for action in call["TransactItems"])  # never a Put
        updates = [action["Update"] for action in call["TransactItems"]]
        assert {u["UpdateExpression"] for u in updates} == {"SET #id = :id, major = :major, #year = :year"}
        names.append([u["Key"]["name"]["S"] for u in updates])
    return names


def test_reimporting_two_thousand_unchanged_students_reads_them_in_twenty_calls_and_writes_nothing(
    dynamodb, table
) -> None:
    records = parse_students(roster(2000))
    seed(dynamodb, table, records)
    calls = Calls(dynamodb)

    done = DynamoStudentStore(dynamodb, table).put_students(records)

    assert dict(calls.count) == {"BatchGetItem": 20}  # was 20 reads and 2,000 UpdateItems
    assert done == StudentImport(unchanged=2000)
    for get in calls.of("BatchGetItem"):
        [(_, request)] = get["RequestItems"].items()
        assert len(request["Keys"]) == 100 and request["ProjectionExpression"] == RECORD_FIELDS


def test_changing_some_students_writes_exactly_those_in_transactions_of_100(dynamodb, table) -> None:
    records = parse_students(roster(2000))
    seed(dynamodb, table, records)
    changed = {r.name for r in records[1000:1150]}
    calls = Calls(dynamodb)

    done = DynamoStudentStore(dynamodb, table).put_students(
        [StudentRecord(r.id, r.name, "Physics", r.year) if r.name in changed else r for r in records]
    )

    assert dict(calls.count) == {"BatchGetItem": 20, "TransactWriteItems": 2}
    assert done == StudentImport(changed=150, unchanged=1850)
    written = updated(calls)
    assert [len(names) for names in written] == [100, 50] and {n for names in written for n in names} == changed
    assert item(dynamodb, table, "Student 01000")["major"] == {"S": "Physics"}
    assert item(dynamodb, table, "Student 00999")["major"] == {"S": "Law"}


def test_new_students_are_updates_too_100_a_transaction(dynamodb, table) -> None:
    calls = Calls(dynamodb)

    assert DynamoStudentStore(dynamodb, table).put_students(parse_students(roster(250))) == StudentImport(new=250)

    assert dict(calls.count) == {"BatchGetItem": 3, "TransactWriteItems": 3}
    assert [len(names) for names in updated(calls)] == [100, 100, 50]
    assert item(dynamodb, table, "Student 00249") == {
        "name": {"S": "Student 00249"}, "id": {"S": "249"}, "major": {"S": "Law"}, "year": {"S": "1"},
    }
    assert dynamodb.scan(TableName=table, Select="COUNT", ConsistentRead=True)["Count"] == 250


def test_students_already_in_the_table_are_updated_in_place_and_keep_their_faces(dynamodb, table) -> None:
    face = {"BS": [b"\x01" * 512]}
    dynamodb.put_item(TableName=table, Item={"name": {"S": "Student 00007"}, "faces": face})  # enrolled before the import
    dynamodb.put_item(TableName=table, Item={"name": {"S": "Student 00008"}, "id": {"S": "8"}, "major": {"S": "Art"},
                                             "year": {"S": "1"}, "faces": face})
    seed(dynamodb, table, parse_students(roster(100))[10:])  # 90 as they will be imported

    done = DynamoStudentStore(dynamodb, table).put_students(parse_students(roster(100)))

    # 10 without a record (7 with faces alone), 8 whose major changes, 90 already as given.
    assert done == StudentImport(new=9, changed=1, unchanged=90)
    assert item(dynamodb, table, "Student 00007") == {
        "name": {"S": "Student 00007"}, "faces": face, "id": {"S": "7"}, "major": {"S": "Law"}, "year": {"S": "1"},
    }
    assert item(dynamodb, table, "Student 00008") == {
        "name": {"S": "Student 00008"}, "faces": face, "id": {"S": "8"}, "major": {"S": "Law"}, "year": {"S": "1"},
    }
    assert dynamodb.scan(TableName=table, Select="COUNT", ConsistentRead=True)["Count"] == 100


def test_faces_enrolled_between_the_imports_read_and_its_write_are_kept(dynamodb, table, face_settings) -> None:
    """A photo of a student enrolled by the face function while the student's record is being
    imported: the face is written after the import has read that there is no such student, and
    before it writes the record. A Put of the new record would replace the item and drop the face."""
    import boto3

    face = b"\x05" * 512
    face_function = DynamoStudentStore(boto3.client("dynamodb", region_name=face_settings.region), table)

    def enrol_meanwhile(**_: object) -> None:
        face_function.add_faces("Student 00003", [face])  # what the face function does with a photo

    dynamodb.meta.events.register_first("after-call.dynamodb.BatchGetItem", enrol_meanwhile)
    done = DynamoStudentStore(dynamodb, table).put_students(parse_students(roster(5)))
    dynamodb.meta.events.unregister("after-call.dynamodb.BatchGetItem", enrol_meanwhile)

    assert item(dynamodb, table, "Student 00003") == {
        "name": {"S": "Student 00003"}, "faces": {"BS": [face]}, "id": {"S": "3"}, "major": {"S": "Law"},
        "year": {"S": "1"},
    }
    assert done == StudentImport(new=5)  # as read: Student 00003 had no record


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
    assert students.put_students([ADA, ALAN, StudentRecord("1", "Ada Lovelace", "Computing", "1843")]).imported == 2
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


def test_an_import_writes_only_what_is_new_or_changed_and_says_which(students: StudentStore) -> None:
    students.add_faces("Grace Hopper", [FACE])  # faces alone: no record yet
    grace = StudentRecord("3", "Grace Hopper", "Navy", "1906")

    assert students.put_students([ADA, ALAN]) == StudentImport(new=2)
    assert students.put_students([ADA, ALAN]) == StudentImport(unchanged=2)
    again = students.put_students([ADA, StudentRecord("2", "Alan Turing", "Computing", "1936"), grace, ADA])
    assert again == StudentImport(new=1, changed=1, unchanged=1)  # the last of a name counts once
    assert again.as_json() == {"imported": 3, "new": 1, "changed": 1, "unchanged": 1}

    assert students.records(["Alan Turing", "Grace Hopper"]) == {
        "Alan Turing": StudentRecord("2", "Alan Turing", "Computing", "1936"), "Grace Hopper": grace,
    }
    assert students.faces() == {"Grace Hopper": [FACE]}


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
