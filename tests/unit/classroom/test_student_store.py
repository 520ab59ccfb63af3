"""iraas/classroom/student_store.py's DynamoDB adapter when DynamoDB answers what moto never does:
items and keys left unprocessed (asked for again, in bounded rounds, with a pause), and a Scan that
answers in small pages (every page read, up to the listing's bounds).

DynamoDB is botocore's Stubber on a real client: each call's parameters are checked against the API
model and against the call expected, and answered with a response of the API's own shape; nothing is
sent. The store's batches on moto are in tests/integration/classroom/test_student_store.py.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from typing import Any

import boto3
import pytest
from botocore.stub import Stubber

from iraas.classroom.student_store import MAX_UNPROCESSED_RETRIES
from iraas.classroom.student_store import DynamoStudentStore as StudentStore
from iraas.classroom.students import StudentRecord, parse_students

TABLE = "Students"


@pytest.fixture
def dynamodb() -> Iterator[tuple[Any, Stubber]]:
    """A DynamoDB client whose answers the test queues; every one must be asked for."""
    client = boto3.client("dynamodb", region_name="us-east-1", aws_access_key_id="test", aws_secret_access_key="test")
    with Stubber(client) as stub:
        yield client, stub
        stub.assert_no_pending_responses()


def key(name: str) -> dict:
    return {"name": {"S": name}}


# ---- writes left unprocessed ------------------------------------------------------------------


def roster(count: int) -> list[dict]:
    return [{"id": str(n), "name": f"Student {n:05}", "major": "Law", "year": "1"} for n in range(count)]


def put(record: StudentRecord) -> dict:
    return {"PutRequest": {"Item": {
        "name": {"S": record.name}, "id": {"S": record.id}, "major": {"S": record.major}, "year": {"S": record.year},
    }}}


def none_exist(stub: Stubber, records: list[StudentRecord]) -> None:
    """The first call of an import: which of them the table has (the name alone). None."""
    stub.add_response("batch_get_item", {"Responses": {TABLE: []}}, {"RequestItems": {TABLE: {
        "Keys": [key(r.name) for r in records], "ConsistentRead": True,
        "ProjectionExpression": "#n", "ExpressionAttributeNames": {"#n": "name"},
    }}})


def test_puts_left_unprocessed_are_written_again_with_backoff_then_given_up(dynamodb) -> None:
    client, stub = dynamodb
    records = parse_students(roster(25))
    puts, last = [put(r) for r in records], [put(records[-1])]
    none_exist(stub, records)
    stub.add_response("batch_write_item", {"UnprocessedItems": {TABLE: last}}, {"RequestItems": {TABLE: puts}})
    stub.add_response("batch_write_item", {"UnprocessedItems": {TABLE: last}}, {"RequestItems": {TABLE: last}})
    stub.add_response("batch_write_item", {"UnprocessedItems": {}}, {"RequestItems": {TABLE: last}})
    sleeps: list[float] = []

    assert StudentStore(client, TABLE, sleep=sleeps.append).put_students(records) == 25

    stub.assert_no_pending_responses()  # all 25 in the first call, the one left over in each of the next two
    assert len(sleeps) == 2 and 0 < sleeps[0] < sleeps[1]

    none_exist(stub, records)
    stub.add_response("batch_write_item", {"UnprocessedItems": {TABLE: last}}, {"RequestItems": {TABLE: puts}})
    for _ in range(MAX_UNPROCESSED_RETRIES - 1):
        stub.add_response("batch_write_item", {"UnprocessedItems": {TABLE: last}}, {"RequestItems": {TABLE: last}})
    with pytest.raises(RuntimeError, match="unprocessed"):
        StudentStore(client, TABLE, sleep=lambda _s: None).put_students(records)
    # MAX_UNPROCESSED_RETRIES calls, no more: the fixture checks none is left, the Stubber that none is extra.


# ---- reads left unprocessed -------------------------------------------------------------------


def _record(name: str) -> StudentRecord:
    return StudentRecord(id=f"id-{name}", name=name, major="Law", year="4")


def _item(name: str) -> dict:
    return {"name": {"S": name}, "id": {"S": f"id-{name}"}, "major": {"S": "Law"}, "year": {"S": "4"}}


def asking(*names: str) -> dict:
    return {"RequestItems": {TABLE: {"Keys": [key(n) for n in names], "ConsistentRead": True}}}


def answer(found: list[str], unprocessed: Sequence[str] = ()) -> dict:
    response: dict = {"Responses": {TABLE: [_item(n) for n in found]}}
    if unprocessed:
        response["UnprocessedKeys"] = {TABLE: {"Keys": [key(n) for n in unprocessed], "ConsistentRead": True}}
    return response


def test_unprocessed_keys_are_asked_for_again_until_every_record_is_found(dynamodb) -> None:
    client, stub = dynamodb
    names = ["ada", "bob", "cy", "dee", "eve"]
    # Each call asks only for what the one before left unprocessed.
    stub.add_response("batch_get_item", answer(["ada", "bob", "dee"], unprocessed=["cy", "eve"]), asking(*names, "stranger"))
    stub.add_response("batch_get_item", answer(["cy"], unprocessed=["eve"]), asking("cy", "eve"))
    stub.add_response("batch_get_item", answer(["eve"]), asking("eve"))
    sleeps: list[float] = []

    found = StudentStore(client, TABLE, sleep=sleeps.append).records([*names, "stranger"])

    assert found == {n: _record(n) for n in names}  # the stranger has no record: simply absent
    assert len(sleeps) == 2 and all(s > 0 for s in sleeps)  # a pause before each new round


def test_keys_that_are_never_processed_make_records_fail_instead_of_looping(dynamodb) -> None:
    client, stub = dynamodb
    for _ in range(MAX_UNPROCESSED_RETRIES):
        stub.add_response("batch_get_item", answer([], unprocessed=["ada"]), asking("ada"))

    with pytest.raises(RuntimeError, match="unprocessed"):
        StudentStore(client, TABLE, sleep=lambda _s: None).records(["ada"])
    # MAX_UNPROCESSED_RETRIES calls: the fixture checks none is left, the Stubber that none is extra.


# ---- a listing, page by page ------------------------------------------------------------------

LISTING = {
    "TableName": TABLE,
    "ProjectionExpression": "#n, #id, major, #year, faces",  # faces counted here, never answered
    "ExpressionAttributeNames": {"#n": "name", "#id": "id", "#year": "year"},
    "ConsistentRead": True,  # a page reloaded after a change shows it
}


def paged_scan(stub: Stubber, count: int, per_page: int, pages: int) -> None:
    """A table of ``count`` students (student 3 has two faces) that the next ``pages`` Scans read,
    ``per_page`` items a page, each from where the last one stopped."""
    items = [
        {"name": {"S": f"S{n:03}"}, "id": {"S": str(n)}, "major": {"S": "Law"}, "year": {"S": "1"},
         **({"faces": {"BS": [b"a" * 512, b"b" * 512]}} if n == 3 else {})}
        for n in reversed(range(count))  # a Scan's order is not the names'
    ]
    start_key: dict = {}
    for start in range(0, per_page * pages, per_page):
        page: dict = {"Items": items[start : start + per_page]}
        if start + per_page < len(items):
            page["LastEvaluatedKey"] = key(page["Items"][-1]["name"]["S"])
        stub.add_response("scan", page, {**LISTING, **start_key})
        start_key = {"ExclusiveStartKey": page["LastEvaluatedKey"]} if "LastEvaluatedKey" in page else {}


def test_every_page_is_read_and_the_students_come_sorted_with_their_face_counts(dynamodb):
    client, stub = dynamodb
    paged_scan(stub, count=10, per_page=3, pages=4)

    listed, truncated = StudentStore(client, TABLE).summaries(limit=100)

    assert [s.name for s in listed] == [f"S{n:03}" for n in range(10)] and not truncated
    assert [s.faces for s in listed if s.faces] == [2] and listed[3].name == "S003"


def test_the_listing_stops_at_its_limit_or_its_pages_and_says_so(dynamodb):
    client, stub = dynamodb
    paged_scan(stub, count=10, per_page=3, pages=2)
    listed, truncated = StudentStore(client, TABLE).summaries(limit=4)
    assert (len(listed), truncated) == (4, True)
    stub.assert_no_pending_responses()  # two pages read

    paged_scan(stub, count=10, per_page=3, pages=2)
    listed, truncated = StudentStore(client, TABLE).summaries(limit=100, max_pages=2)
    assert (len(listed), truncated) == (6, True)
