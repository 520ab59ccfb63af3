"""POST /v1/students on moto: bounded before anything is written, written in batches, faces kept,
and a record already as given not written again.

Every call on the shared DynamoDB client is counted with botocore's event hooks; nothing here
asserts a time. No face engine: the web tier only writes records.
"""

from __future__ import annotations

import json
import math
from collections import Counter
from collections.abc import Iterator

import pytest
from chalice.test import Client

from iraas import aws
from iraas.classroom.students import MAX_STUDENTS, MAX_STUDENTS_BYTES

DESCRIPTOR = bytes(512)
JSON = {"Content-Type": "application/json"}

pytestmark = pytest.mark.usefixtures("transactions_copy_each_table_once")  # as the embedded stack's moto


def roster(count: int, major: str = "Law") -> list[dict]:
    return [{"id": str(n), "name": f"Student {n:05}", "major": major, "year": "1"} for n in range(count)]


@pytest.fixture
def client(web_app) -> Iterator[Client]:
    with Client(web_app.app) as client:
        yield client


@pytest.fixture
def dynamodb_calls(face_settings) -> Iterator[Counter[str]]:
    calls: Counter[str] = Counter()

    def count(event_name: str, **_: object) -> None:
        calls[event_name.removeprefix("before-call.dynamodb.")] += 1

    events = aws.client(face_settings, "dynamodb").meta.events
    events.register("before-call.dynamodb", count)
    yield calls
    events.unregister("before-call.dynamodb", count)


def test_new_students_are_written_100_a_transaction(client, store, dynamodb_calls):
    answer = client.http.post("/v1/students", headers=JSON, body=json.dumps(roster(250)))

    assert (answer.status_code, answer.json_body) == (200, {"imported": 250, "new": 250, "changed": 0, "unchanged": 0})
    # The records there are (100 a call), then the new ones set 100 a transaction: nothing one at a time.
    assert dict(dynamodb_calls) == {"BatchGetItem": 3, "TransactWriteItems": 3}
    listed, _ = store.summaries()
    assert len(listed) == 250


def test_reimporting_five_thousand_students_writes_only_the_changes_and_keeps_faces(
    client, store, face_settings, dynamodb_calls
):
    dynamodb = aws.client(face_settings, "dynamodb")
    for start in range(0, MAX_STUDENTS, 25):  # the table as the last import of the course left it
        dynamodb.batch_write_item(RequestItems={str(face_settings.students_table): [{"PutRequest": {"Item": {
            field: {"S": value} for field, value in record.items()}}} for record in roster(MAX_STUDENTS)[start : start + 25]]})
    store.add_faces("Student 00042", [DESCRIPTOR, b"\x01" * 512])
    store.add_faces("Newcomer", [DESCRIPTOR])  # enrolled from the CLI before her record
    dynamodb_calls.clear()

    same = client.http.post("/v1/students", headers=JSON, body=json.dumps(roster(MAX_STUDENTS)))

    assert (same.status_code, same.json_body) == (
        200, {"imported": MAX_STUDENTS, "new": 0, "changed": 0, "unchanged": MAX_STUDENTS})
    assert dict(dynamodb_calls) == {"BatchGetItem": MAX_STUDENTS // 100}  # read, compared, nothing written
    dynamodb_calls.clear()
    changed = [*roster(300, major="Physics"), *roster(MAX_STUDENTS - 1)[300:],  # one left out: the limit
               {"id": "n", "name": "Newcomer", "major": "Art", "year": "2"}]

    again = client.http.post("/v1/students", headers=JSON, body=json.dumps(changed))

    assert (again.status_code, again.json_body) == (
        200, {"imported": MAX_STUDENTS, "new": 1, "changed": 300, "unchanged": MAX_STUDENTS - 301})
    # The 4,699 records already as given are not written; the 301 others are updated in place,
    # 100 a transaction: a Put would have replaced their faces.
    assert dict(dynamodb_calls) == {"BatchGetItem": MAX_STUDENTS // 100, "TransactWriteItems": math.ceil(301 / 100)}
    assert {n: len(f) for n, f in store.faces().items()} == {"Student 00042": 2, "Newcomer": 1}
    records = store.records(["Student 00042", "Newcomer"])
    assert (records["Student 00042"].major, records["Newcomer"].major) == ("Physics", "Art")


@pytest.mark.parametrize(
    ("body", "status", "code"),
    [
        (json.dumps(roster(40_000)), 413, "too_large"),  # 2 MB: refused by its size, unparsed
        (json.dumps(roster(MAX_STUDENTS + 1)), 413, "too_many_students"),
        ("[" * 100_000, 400, "invalid_students"),  # was a 500 (RecursionError)
        ('[{"id": 1, "name": "Ada", "major": "CS"}]', 400, "invalid_students"),
    ],
    ids=["40000-records", "one-over-the-count", "deep-nesting", "a-field-missing"],
)
def test_an_import_over_its_bounds_or_malformed_is_refused_before_anything_is_written(
    client, dynamodb_calls, body, status, code
):
    answer = client.http.post("/v1/students", headers=JSON, body=body)

    assert answer.status_code == status and answer.json_body["error"]["code"] == code
    assert sum(dynamodb_calls.values()) == 0
    if code == "too_large":
        assert f"{MAX_STUDENTS_BYTES:,}" in answer.json_body["error"]["message"]
