"""Looking up student records asks DynamoDB again for the keys it left unprocessed, in bounded rounds.

StudentStore is real; DynamoDB is the edge, faked as a low-level client with only batch_get_item
that, like the real one, rejects more than 100 keys and may leave some of them unprocessed.
"""

from __future__ import annotations

import pytest

from iraas.classroom.student_store import MAX_UNPROCESSED_RETRIES
from iraas.classroom.student_store import DynamoStudentStore as StudentStore
from iraas.classroom.students import StudentRecord

TABLE = "Students"


class FakeDynamoDB:
    """A StudentsTable holding ``names``; ``throttled[name]``: how many calls leave that key unprocessed."""

    def __init__(self, names: list[str], throttled: dict[str, float] | None = None) -> None:
        self.items = {
            n: {"name": {"S": n}, "id": {"S": f"id-{n}"}, "major": {"S": "Law"}, "year": {"S": "4"}}
            for n in names
        }
        self.throttled = dict(throttled or {})
        self.asked: list[set[str]] = []  # the names of each call's keys

    def batch_get_item(self, RequestItems: dict) -> dict:  # noqa: N803 - boto3's name
        request = RequestItems[TABLE]
        names = [key["name"]["S"] for key in request["Keys"]]
        if len(names) > 100 or len(set(names)) != len(names):
            raise ValueError("ValidationException: at most 100 distinct keys per BatchGetItem")
        self.asked.append(set(names))
        assert len(self.asked) < 100, "records() kept asking"  # so a regression fails, not hangs
        left = [n for n in names if self.throttled.get(n, 0) > 0]
        for n in left:
            self.throttled[n] -= 1
        response: dict = {"Responses": {TABLE: [self.items[n] for n in names if n not in left and n in self.items]}}
        if left:
            response["UnprocessedKeys"] = {TABLE: {**request, "Keys": [{"name": {"S": n}} for n in left]}}
        return response


def _record(name: str) -> StudentRecord:
    return StudentRecord(id=f"id-{name}", name=name, major="Law", year="4")


def test_unprocessed_keys_are_asked_for_again_until_every_record_is_found() -> None:
    names = ["ada", "bob", "cy", "dee", "eve"]
    db = FakeDynamoDB(names, throttled={"cy": 1, "eve": 2})
    sleeps: list[float] = []

    found = StudentStore(db, TABLE, sleep=sleeps.append).records([*names, "stranger"])

    assert found == {n: _record(n) for n in names}  # the stranger has no record: simply absent
    # Each call asks only for what the one before left unprocessed, after a pause.
    assert db.asked == [{*names, "stranger"}, {"cy", "eve"}, {"eve"}]
    assert len(sleeps) == 2 and all(s > 0 for s in sleeps)


def test_more_than_100_names_are_asked_for_in_batches_of_at_most_100() -> None:
    names = [f"student-{i:03d}" for i in range(250)]
    db = FakeDynamoDB(names)

    found = StudentStore(db, TABLE, sleep=lambda _s: None).records(names)

    assert found == {n: _record(n) for n in names}
    assert sorted(len(call) for call in db.asked) == [50, 100, 100]
    assert sorted(n for call in db.asked for n in call) == names  # each name asked for once


def test_keys_that_are_never_processed_make_records_fail_instead_of_looping() -> None:
    db = FakeDynamoDB(["ada"], throttled={"ada": float("inf")})

    with pytest.raises(RuntimeError, match="unprocessed"):
        StudentStore(db, TABLE, sleep=lambda _s: None).records(["ada"])
    assert len(db.asked) == MAX_UNPROCESSED_RETRIES
