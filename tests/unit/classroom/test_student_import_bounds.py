"""A student import is bounded in bytes and records, parsed in one pass, and written in batches.

The findings these pin: 40,000 records (2 MB) took 25.6 s (a quadratic check for duplicate names),
one UpdateItem each, so a large body timed out after partial writes; deep nesting was a 500; a
student named =HYPERLINK(...) went into the attendance CSV as a formula.

StudentStore is real; DynamoDB is the edge, faked as a low-level client that, like the real one,
takes 100 keys a BatchGetItem and 25 Puts a BatchWriteItem, and may leave some unprocessed.
"""

from __future__ import annotations

import json
import math
import threading
from collections import Counter
from typing import Any

import pytest

from iraas.classroom.student_store import MAX_UNPROCESSED_RETRIES
from iraas.classroom.student_store import DynamoStudentStore as StudentStore
from iraas.classroom.students import (
    MAX_STUDENTS,
    MAX_STUDENTS_BYTES,
    InvalidStudents,
    StudentRecord,
    TooManyStudents,
    csv_text,
    parse_students,
    parse_students_json,
)

TABLE = "Students"


def roster(count: int) -> list[dict]:
    return [{"id": str(n), "name": f"Student {n:05}", "major": "Law", "year": "1"} for n in range(count)]


def test_forty_thousand_records_are_refused_by_size_before_they_are_parsed() -> None:
    body = json.dumps(roster(40_000)).encode()
    assert len(body) > MAX_STUDENTS_BYTES

    with pytest.raises(TooManyStudents) as refused:
        parse_students_json(body)

    assert refused.value.code == "too_large" and f"{MAX_STUDENTS_BYTES:,}" in str(refused.value)


def test_more_records_than_the_limit_are_refused_before_any_is_checked() -> None:
    records = roster(MAX_STUDENTS + 1)
    records[-1] = {"not": "a student"}  # never looked at: the count is refused first
    body = json.dumps(records)
    assert len(body) < MAX_STUDENTS_BYTES

    with pytest.raises(TooManyStudents) as refused:
        parse_students_json(body)

    assert refused.value.code == "too_many_students" and f"{MAX_STUDENTS:,}" in str(refused.value)
    assert len(parse_students(roster(MAX_STUDENTS))) == MAX_STUDENTS  # the limit itself is allowed


@pytest.mark.parametrize("body", ["[" * 200_000, '{"a":' * 100_000, "[" * 50_000 + "]" * 50_000])
def test_deep_nesting_is_an_invalid_import_not_a_crash(body: str) -> None:
    with pytest.raises(InvalidStudents, match="not JSON") as refused:
        parse_students_json(body)
    assert not isinstance(refused.value, TooManyStudents)


def test_duplicate_names_are_found_in_one_pass_and_all_named() -> None:
    records = roster(MAX_STUDENTS)
    records[10]["name"] = records[20]["name"] = "Ada"
    records[30]["name"] = records[4000]["name"] = "Bob"
    with pytest.raises(InvalidStudents, match="must be unique .*: Ada, Bob$"):
        parse_students(records)


class FakeDynamoDB:
    """A StudentsTable that checks what DynamoDB checks: 100 keys a BatchGetItem, 25 Puts a
    BatchWriteItem; ``unprocessed``: how many BatchWriteItem calls leave their last Put undone."""

    def __init__(self, unprocessed: float = 0) -> None:
        self.items: dict[str, dict] = {}
        self.calls: Counter[str] = Counter()
        self.unprocessed = unprocessed
        self.lock = threading.Lock()  # updates come from several threads

    def _called(self, operation: str) -> None:
        with self.lock:
            self.calls[operation] += 1
            assert sum(self.calls.values()) < 20_000, "put_students kept calling"

    def batch_get_item(self, RequestItems: dict) -> dict:  # noqa: N803 - boto3's names
        self._called("BatchGetItem")
        request = RequestItems[TABLE]
        names = [key["name"]["S"] for key in request["Keys"]]
        assert len(names) <= 100 and len(set(names)) == len(names)
        assert request["ProjectionExpression"] == "#n"  # the faces are never read to be written back
        return {"Responses": {TABLE: [{"name": self.items[n]["name"]} for n in names if n in self.items]}}

    def batch_write_item(self, RequestItems: dict) -> dict:  # noqa: N803
        self._called("BatchWriteItem")
        puts = RequestItems[TABLE]
        assert len(puts) <= 25
        left = puts[-1:] if self.unprocessed > 0 else []
        self.unprocessed -= 1
        for put in puts[: len(puts) - len(left)]:
            item = put["PutRequest"]["Item"]
            assert set(item) == {"name", "id", "major", "year"}
            assert item["name"]["S"] not in self.items, "a Put replaced a student already in the table"
            self.items[item["name"]["S"]] = dict(item)
        return {"UnprocessedItems": {TABLE: left}} if left else {}

    def update_item(self, **update: Any) -> dict:
        self._called("UpdateItem")
        assert update["UpdateExpression"] == "SET #id = :id, major = :major, #year = :year"  # never the faces
        values = update["ExpressionAttributeValues"]
        with self.lock:
            item = self.items.setdefault(update["Key"]["name"]["S"], {"name": update["Key"]["name"]})
            item.update({"id": values[":id"], "major": values[":major"], "year": values[":year"]})
        return {}


def test_five_thousand_new_students_are_written_in_two_hundred_calls() -> None:
    db = FakeDynamoDB()

    assert StudentStore(db, TABLE).put_students(parse_students(roster(MAX_STUDENTS))) == MAX_STUDENTS

    assert len(db.items) == MAX_STUDENTS
    assert dict(db.calls) == {"BatchGetItem": MAX_STUDENTS // 100, "BatchWriteItem": math.ceil(MAX_STUDENTS / 25)}


def test_students_already_in_the_table_are_updated_in_place_and_keep_their_faces() -> None:
    db = FakeDynamoDB()
    face = {"BS": [b"\x01" * 512]}
    db.items["Student 00007"] = {"name": {"S": "Student 00007"}, "faces": face}  # enrolled before the import
    db.items["Student 00008"] = {"name": {"S": "Student 00008"}, "id": {"S": "8"}, "major": {"S": "Art"}}

    StudentStore(db, TABLE).put_students(parse_students(roster(100)))

    assert db.items["Student 00007"] == {
        "name": {"S": "Student 00007"}, "faces": face, "id": {"S": "7"}, "major": {"S": "Law"}, "year": {"S": "1"},
    }
    assert db.items["Student 00008"]["major"] == {"S": "Law"}
    assert db.calls == {"BatchGetItem": 1, "BatchWriteItem": 4, "UpdateItem": 2}


def test_puts_left_unprocessed_are_written_again_with_backoff_then_given_up() -> None:
    sleeps: list[float] = []
    db = FakeDynamoDB(unprocessed=2)

    StudentStore(db, TABLE, sleep=sleeps.append).put_students(parse_students(roster(25)))

    assert len(db.items) == 25 and db.calls["BatchWriteItem"] == 3
    assert len(sleeps) == 2 and 0 < sleeps[0] < sleeps[1]

    stuck = FakeDynamoDB(unprocessed=float("inf"))
    with pytest.raises(RuntimeError, match="unprocessed"):
        StudentStore(stuck, TABLE, sleep=lambda _s: None).put_students(parse_students(roster(25)))
    assert stuck.calls["BatchWriteItem"] == MAX_UNPROCESSED_RETRIES


@pytest.mark.parametrize(
    ("name", "cell"),
    [
        ('=HYPERLINK("http://evil.example","click")', "\"'=HYPERLINK(\"\"http://evil.example\"\",\"\"click\"\")\""),
        ("+1+1", "'+1+1"),
        ("-2+3", "'-2+3"),
        ("@SUM(A1)", "'@SUM(A1)"),
        ("\tTab", "'\tTab"),
        ("\rReturn", "\"'\nReturn\""),  # and quoted: a bare CR would end the row
        ("Ada = Lovelace", "Ada = Lovelace"),  # only a leading character starts a formula
    ],
)
def test_a_csv_cell_that_would_start_a_formula_is_made_text(name: str, cell: str) -> None:
    text = csv_text([StudentRecord("1", name, "=1+1", "-1")])

    # OWASP's rule; it changes the cell, so a year of -1 reads '-1.
    assert text == f"name,major,year\n{cell},'=1+1,'-1\n"


def test_the_csv_keeps_rfc_4180_quoting() -> None:
    rows = [StudentRecord("1", "Joe Biden", "History, Politics", "4"), StudentRecord("2", 'Ann "A" Lee', "Art", "2")]
    assert csv_text(rows) == 'name,major,year\n"Ann ""A"" Lee",Art,2\nJoe Biden,"History, Politics",4\n'
