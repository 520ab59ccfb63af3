"""iraas/classroom/student_store.py's DynamoDB adapter when DynamoDB answers what moto never does:
keys left unprocessed (asked for again, in bounded rounds, with a pause), a transaction cancelled
for a conflict or throttling (tried again, in bounded tries, with a pause) or for good (raised),
and a Scan that answers in small pages (every page read, up to the listing's bounds).

DynamoDB is botocore's Stubber on a real client: each call's parameters are checked against the API
model and against the call expected, and answered with a response of the API's own shape; nothing is
sent. The store's batches on moto are in tests/integration/classroom/test_student_store.py.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from typing import Any

import boto3
import pytest
from botocore.exceptions import ClientError
from botocore.stub import Stubber

from iraas.classroom.student_store import MAX_TRANSACTION_TRIES, MAX_UNPROCESSED_RETRIES
from iraas.classroom.student_store import DynamoStudentStore as StudentStore
from iraas.classroom.students import StudentImport, StudentRecord, parse_students

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


# ---- transactions cancelled ---------------------------------------------------------------------

# What an import reads of each student: the record's fields, never the faces.
RECORD_FIELDS = {"ProjectionExpression": "#n, #id, major, #year",
                 "ExpressionAttributeNames": {"#n": "name", "#id": "id", "#year": "year"}}


def roster(count: int) -> list[dict]:
    return [{"id": str(n), "name": f"Student {n:05}", "major": "Law", "year": "1"} for n in range(count)]


def update(record: StudentRecord) -> dict:
    return {"Update": {
        "TableName": TABLE, "Key": key(record.name), "UpdateExpression": "SET #id = :id, major = :major, #year = :year",
        "ExpressionAttributeNames": {"#id": "id", "#year": "year"},
        "ExpressionAttributeValues": {":id": {"S": record.id}, ":major": {"S": record.major}, ":year": {"S": record.year}},
    }}


def none_exist(stub: Stubber, records: list[StudentRecord]) -> None:
    """The first call of an import: the records the table has of them. None."""
    stub.add_response("batch_get_item", {"Responses": {TABLE: []}}, {"RequestItems": {TABLE: {
        "Keys": [key(r.name) for r in records], "ConsistentRead": True, **RECORD_FIELDS,
    }}})


def cancelled(stub: Stubber, records: list[StudentRecord], reason: str, on: int = 1) -> None:
    """The transaction of ``records`` cancelled because of its ``on``-th update."""
    reasons = [{"Code": reason if i == on else "None"} for i in range(len(records))]
    stub.add_client_error(
        "transact_write_items", "TransactionCanceledException", f"Transaction cancelled [{reason}]",
        expected_params={"TransactItems": [update(r) for r in records]}, modeled_fields={"CancellationReasons": reasons},
    )


def test_a_transaction_cancelled_by_a_conflict_or_throttling_is_tried_again_with_backoff_then_given_up(dynamodb):
    client, stub = dynamodb
    records = parse_students(roster(3))
    none_exist(stub, records)
    cancelled(stub, records, "TransactionConflict")  # a face enrolled at the same moment
    cancelled(stub, records, "ThrottlingError")
    stub.add_response("transact_write_items", {}, {"TransactItems": [update(r) for r in records]})
    sleeps: list[float] = []

    assert StudentStore(client, TABLE, sleep=sleeps.append).put_students(records) == StudentImport(new=3)

    stub.assert_no_pending_responses()  # the same transaction three times
    assert len(sleeps) == 2 and 0 < sleeps[0] < sleeps[1]

    none_exist(stub, records)
    for _ in range(MAX_TRANSACTION_TRIES):
        cancelled(stub, records, "TransactionConflict")
    with pytest.raises(RuntimeError, match="kept cancelling the student import.*TransactionConflict"):
        StudentStore(client, TABLE, sleep=lambda _s: None).put_students(records)
    # MAX_TRANSACTION_TRIES calls, no more: the fixture checks none is left, the Stubber that none is extra.


def test_a_transaction_cancelled_for_good_is_raised_at_once(dynamodb):
    client, stub = dynamodb
    records = parse_students(roster(2))
    none_exist(stub, records)
    cancelled(stub, records, "ValidationError", on=0)
    sleeps: list[float] = []

    with pytest.raises(ClientError, match="TransactionCanceledException"):
        StudentStore(client, TABLE, sleep=sleeps.append).put_students(records)
    assert sleeps == []  # one call: the fixture checks that none is left


def test_an_import_is_written_100_updates_a_transaction_in_its_order(dynamodb):
    client, stub = dynamodb
    records = parse_students(roster(150))
    stub.add_response("batch_get_item", {"Responses": {TABLE: []}}, {"RequestItems": {TABLE: {
        "Keys": [key(r.name) for r in records[:100]], "ConsistentRead": True, **RECORD_FIELDS}}})
    stub.add_response("batch_get_item", {"Responses": {TABLE: [_item(r.name, r.id, "Law", "1") for r in records[100:]]}},
                      {"RequestItems": {TABLE: {"Keys": [key(r.name) for r in records[100:]], "ConsistentRead": True,
                                                **RECORD_FIELDS}}})
    stub.add_response("transact_write_items", {}, {"TransactItems": [update(r) for r in records[:100]]})

    assert StudentStore(client, TABLE).put_students(records) == StudentImport(new=100, unchanged=50)


# ---- reads left unprocessed -------------------------------------------------------------------


def _record(name: str) -> StudentRecord:
    return StudentRecord(id=f"id-{name}", name=name, major="Law", year="4")


def _item(name: str, id: str | None = None, major: str = "Law", year: str = "4") -> dict:
    return {"name": {"S": name}, "id": {"S": id or f"id-{name}"}, "major": {"S": major}, "year": {"S": year}}


def asking(*names: str) -> dict:
    return {"RequestItems": {TABLE: {"Keys": [key(n) for n in names], "ConsistentRead": True, **RECORD_FIELDS}}}


def answer(found: list[str], unprocessed: Sequence[str] = ()) -> dict:
    response: dict = {"Responses": {TABLE: [_item(n) for n in found]}}
    if unprocessed:
        response["UnprocessedKeys"] = {TABLE: {"Keys": [key(n) for n in unprocessed], "ConsistentRead": True,
                                               **RECORD_FIELDS}}
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
