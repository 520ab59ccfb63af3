"""The student store: the one place that reads and writes students and their enrolled faces.

:class:`StudentStore` is what the classroom's use cases, the face function and the CLI need.
:class:`DynamoStudentStore` keeps one item per student in ``StudentsTable``, keyed by ``name`` (the
name a face is recognised as): ``{name, id, major, year}`` from ``iraas students import`` (or
``POST /v1/students``), plus ``faces``, a binary set of descriptors (512-byte float32 vectors) from
``iraas faces enroll`` / ``import-encodings`` or a photo posted to ``/v1/students/{name}/photos``.
A set makes enrolling the same photo twice a no-op, and importing records never touches the faces:
an import reads and writes only ``name``, ``id``, ``major`` and ``year``, with UpdateItems (never a
Put, which would replace the whole item), and the web tier's role may write nothing else.
The face function reads the table on every video, so enrolment takes effect without a redeploy.
:class:`InMemoryStudentStore` keeps the same in dicts (for unit tests of what uses a store).

Only boto3 here: the web tier imports this module.
"""

from __future__ import annotations

import threading
import time
from abc import ABC, abstractmethod
from collections.abc import Iterable, Iterator
from typing import TYPE_CHECKING, Any

from botocore.exceptions import ClientError

from iraas import aws
from iraas.classroom.students import (
    MAX_LISTED_STUDENTS,
    MAX_NAME_CHARS,
    InvalidStudents,
    StudentImport,
    StudentRecord,
    StudentSummary,
    UnknownStudent,
)

if TYPE_CHECKING:
    from iraas.classroom.settings import FaceSettings

TRANSACTION_LIMIT = 100  # UpdateItem actions per TransactWriteItems (DynamoDB's maximum)
MAX_FACES_PER_CALL = 100  # keeps one update well under DynamoDB's 400 KB item limit
BATCH_GET_LIMIT = 100  # keys per BatchGetItem
MAX_UNPROCESSED_RETRIES = 8  # rounds of asking again for keys DynamoDB left unprocessed
MAX_TRANSACTION_TRIES = 8  # tries of one transaction that DynamoDB cancels for a conflict or throttling
# Why DynamoDB may cancel a transaction that would succeed later: another write to one of its items
# at the same moment (a face enrolled), or throttling. Any other reason (a validation error) is final.
RETRIED_CANCELLATIONS = frozenset({"TransactionConflict", "ThrottlingError", "ProvisionedThroughputExceeded"})
TRANSACTION_CANCELED = "TransactionCanceledException"
# What an import reads of each student: the record, never the faces.
RECORD_PROJECTION = {"ProjectionExpression": "#n, #id, major, #year",
                     "ExpressionAttributeNames": {"#n": "name", "#id": "id", "#year": "year"}}
# What one listing reads at most: from at most this many Scan pages (1 MB each; an item's
# descriptors are read with it, counted, and dropped with its page).
MAX_LIST_PAGES = 32
CONDITION_FAILED = "ConditionalCheckFailedException"  # the item a condition names is not there


class StudentStore(ABC):
    @abstractmethod
    def put_students(self, records: Iterable[StudentRecord]) -> StudentImport:
        """Create or update records; enrolled faces are kept, and a record that is already as given
        is not written. The last record of a name wins. Returns what was new, changed, unchanged."""

    @abstractmethod
    def add_faces(self, name: str, descriptors: list[bytes], must_exist: bool = False) -> None:
        """Add descriptors to a person (a set: the same descriptor twice is stored once).

        The CLI may enrol faces before the records are imported; an enrolment over HTTP is for a
        student that exists (``must_exist``), and raises UnknownStudent if one was deleted meanwhile."""

    @abstractmethod
    def exists(self, name: str) -> bool:
        """Whether there is a student of that name (a record, enrolled faces, or both)."""

    @abstractmethod
    def delete(self, name: str) -> bool:
        """Remove a student's record and faces; False if there was no such student."""

    @abstractmethod
    def summaries(self, limit: int = MAX_LISTED_STUDENTS) -> tuple[list[StudentSummary], bool]:
        """Up to ``limit`` students sorted by name, and whether there were more than were read."""

    @abstractmethod
    def faces(self) -> dict[str, list[bytes]]:
        """Every enrolled descriptor by name."""

    @abstractmethod
    def records(self, names: Iterable[str]) -> dict[str, StudentRecord]:
        """The records of ``names`` that have one (a face may be enrolled before its record)."""


def _check_name(name: str) -> None:
    if not name.strip() or len(name) > MAX_NAME_CHARS:
        raise InvalidStudents(f"a name must be 1-{MAX_NAME_CHARS} characters")


class DynamoStudentStore(StudentStore):
    """``StudentsTable`` through a boto3 DynamoDB client (low-level, so binary sets stay bytes)."""

    def __init__(self, dynamodb: Any, table: str, sleep: Any = time.sleep) -> None:
        self._db, self._table, self._sleep = dynamodb, table, sleep

    def put_students(self, records: Iterable[StudentRecord]) -> StudentImport:
        """The records the table has of these names are read first (BatchGetItem, 100 names a call,
        ``name``, ``id``, ``major`` and ``year`` only: the faces are never read). A record that is
        already as given is not written, so importing the same file again writes nothing. The
        others (new students, changed records, students with faces and no record yet) are written
        with UpdateItems that SET the record's fields alone, 100 a TransactWriteItems: an update
        creates a missing item and keeps the rest of an existing one, so an import can never drop
        faces, not even those enrolled between the read and the write (a Put would replace the
        item). Each transaction is all or nothing; one DynamoDB cancels for a conflict or
        throttling is tried again (MAX_TRANSACTION_TRIES, with backoff). An import that fails
        part-way has written its earlier transactions: importing the file again finishes it.
        """
        latest = {record.name: record for record in records}  # one action per item and transaction
        before = self._records_of(list(latest))
        writes = [record for name, record in latest.items() if before.get(name) != record]
        for start in range(0, len(writes), TRANSACTION_LIMIT):
            self._write_records(writes[start : start + TRANSACTION_LIMIT])
        changed = sum(1 for record in writes if record.name in before)
        return StudentImport(new=len(writes) - changed, changed=changed, unchanged=len(latest) - len(writes))

    def _write_records(self, records: list[StudentRecord]) -> None:
        """One TransactWriteItems of UpdateItems, tried again while DynamoDB cancels it for a reason
        that can pass (bounded tries, backoff); any other cancellation is raised as it came."""
        actions = [{"Update": {
            "TableName": self._table,
            "Key": {"name": {"S": r.name}},
            "UpdateExpression": "SET #id = :id, major = :major, #year = :year",
            "ExpressionAttributeNames": {"#id": "id", "#year": "year"},
            "ExpressionAttributeValues": {":id": {"S": r.id}, ":major": {"S": r.major}, ":year": {"S": r.year}},
        }} for r in records]
        for attempt in range(MAX_TRANSACTION_TRIES):
            try:
                self._db.transact_write_items(TransactItems=actions)
                return
            except ClientError as exc:
                reasons = {r.get("Code") for r in exc.response.get("CancellationReasons", [])} - {None, "None"}
                if aws.error_code(exc) != TRANSACTION_CANCELED or not reasons or not reasons <= RETRIED_CANCELLATIONS:
                    raise  # not a cancellation, or one for no reason given or a reason that does not pass
                if attempt + 1 == MAX_TRANSACTION_TRIES:
                    raise RuntimeError(
                        f"DynamoDB kept cancelling the student import ({', '.join(sorted(reasons))})"
                    ) from exc
            self._sleep(min(2.0, 0.05 * 2**attempt))  # a conflict or throttling: back off, then again

    def add_faces(self, name: str, descriptors: list[bytes], must_exist: bool = False) -> None:
        _check_name(name)
        condition: dict[str, Any] = (
            {"ConditionExpression": "attribute_exists(#n)", "ExpressionAttributeNames": {"#n": "name"}} if must_exist else {}
        )
        for start in range(0, len(descriptors), MAX_FACES_PER_CALL):
            try:
                self._db.update_item(
                    TableName=self._table,
                    Key={"name": {"S": name}},
                    UpdateExpression="ADD faces :faces",
                    ExpressionAttributeValues={":faces": {"BS": descriptors[start : start + MAX_FACES_PER_CALL]}},
                    **condition,
                )
            except ClientError as exc:
                if aws.error_code(exc) == CONDITION_FAILED:
                    raise UnknownStudent(name) from None
                raise

    def exists(self, name: str) -> bool:
        if not name or len(name) > MAX_NAME_CHARS:
            return False
        item = self._db.get_item(
            TableName=self._table, Key={"name": {"S": name}}, ProjectionExpression="#n",
            ExpressionAttributeNames={"#n": "name"}, ConsistentRead=True,
        ).get("Item")
        return item is not None

    def delete(self, name: str) -> bool:
        if not name or len(name) > MAX_NAME_CHARS:
            return False
        try:
            self._db.delete_item(
                TableName=self._table, Key={"name": {"S": name}},
                ConditionExpression="attribute_exists(#n)", ExpressionAttributeNames={"#n": "name"},
            )
        except ClientError as exc:
            if aws.error_code(exc) == CONDITION_FAILED:
                return False
            raise
        return True

    def summaries(
        self, limit: int = MAX_LISTED_STUDENTS, max_pages: int = MAX_LIST_PAGES
    ) -> tuple[list[StudentSummary], bool]:
        """A Scan has no order, so past the limit the students listed are an arbitrary subset."""
        found: list[StudentSummary] = []
        kwargs: dict[str, Any] = {
            "TableName": self._table,
            "ProjectionExpression": "#n, #id, major, #year, faces",
            "ExpressionAttributeNames": {"#n": "name", "#id": "id", "#year": "year"},
            "ConsistentRead": True,  # a page reloaded after a change shows it
        }
        more = False
        for _page in range(max_pages):
            page = self._db.scan(**kwargs)
            for item in page.get("Items", []):
                found.append(StudentSummary(
                    id=item.get("id", {}).get("S", ""), name=item["name"]["S"],
                    major=item.get("major", {}).get("S", ""), year=item.get("year", {}).get("S", ""),
                    faces=len(item.get("faces", {}).get("BS", [])),
                ))
            more = "LastEvaluatedKey" in page
            if len(found) >= limit or not more:
                break
            kwargs["ExclusiveStartKey"] = page["LastEvaluatedKey"]
        truncated = more or len(found) > limit
        return sorted(found, key=lambda s: s.name)[:limit], truncated

    def faces(self) -> dict[str, list[bytes]]:
        """One strongly consistent scan."""
        found: dict[str, list[bytes]] = {}
        kwargs: dict[str, Any] = {
            "TableName": self._table,
            "ProjectionExpression": "#n, faces",
            "ExpressionAttributeNames": {"#n": "name"},
            "FilterExpression": "attribute_exists(faces)",
            "ConsistentRead": True,
        }
        while True:
            page = self._db.scan(**kwargs)
            for item in page.get("Items", []):
                found[item["name"]["S"]] = list(item["faces"]["BS"])
            if "LastEvaluatedKey" not in page:
                return found
            kwargs["ExclusiveStartKey"] = page["LastEvaluatedKey"]

    def records(self, names: Iterable[str]) -> dict[str, StudentRecord]:
        return self._records_of(sorted(set(names)))

    def _records_of(self, names: list[str]) -> dict[str, StudentRecord]:
        """The records of ``names`` (distinct) that have one; an item of faces alone has none."""
        found: dict[str, StudentRecord] = {}
        for item in self._get_items(names):
            if "major" in item:
                record = StudentRecord(
                    id=item.get("id", {}).get("S", ""), name=item["name"]["S"],
                    major=item["major"]["S"], year=item.get("year", {}).get("S", ""),
                )
                found[record.name] = record
        return found

    def _get_items(self, names: list[str]) -> Iterator[dict[str, Any]]:
        """The records' fields of the items of ``names`` that exist (BatchGetItem, 100 keys a call,
        strongly consistent), asking again for the keys DynamoDB leaves unprocessed, in bounded rounds."""
        for start in range(0, len(names), BATCH_GET_LIMIT):
            chunk = names[start : start + BATCH_GET_LIMIT]
            request: dict[str, Any] = {self._table: {
                "Keys": [{"name": {"S": n}} for n in chunk], "ConsistentRead": True, **RECORD_PROJECTION,
            }}
            for attempt in range(MAX_UNPROCESSED_RETRIES):
                response = self._db.batch_get_item(RequestItems=request)
                yield from response.get("Responses", {}).get(self._table, [])
                request = response.get("UnprocessedKeys") or {}
                if not request:
                    break
                self._sleep(min(2.0, 0.05 * 2**attempt))  # throttled: back off, then ask again
            else:
                raise RuntimeError("DynamoDB kept returning unprocessed keys")


class InMemoryStudentStore(StudentStore):
    """The same contract in dicts, thread-safe."""

    def __init__(self) -> None:
        self._records: dict[str, StudentRecord] = {}
        self._faces: dict[str, set[bytes]] = {}
        self._lock = threading.Lock()

    def put_students(self, records: Iterable[StudentRecord]) -> StudentImport:
        latest = {record.name: record for record in records}
        with self._lock:
            writes = {name: r for name, r in latest.items() if self._records.get(name) != r}
            changed = sum(1 for name in writes if name in self._records)
            self._records.update(writes)
        return StudentImport(new=len(writes) - changed, changed=changed, unchanged=len(latest) - len(writes))

    def add_faces(self, name: str, descriptors: list[bytes], must_exist: bool = False) -> None:
        _check_name(name)
        with self._lock:
            if must_exist and name not in self._records and name not in self._faces:
                raise UnknownStudent(name)
            self._faces.setdefault(name, set()).update(descriptors)

    def exists(self, name: str) -> bool:
        return name in self._records or name in self._faces

    def delete(self, name: str) -> bool:
        with self._lock:
            found = self._records.pop(name, None) is not None
            return self._faces.pop(name, None) is not None or found

    def summaries(self, limit: int = MAX_LISTED_STUDENTS) -> tuple[list[StudentSummary], bool]:
        with self._lock:
            names = sorted(self._records.keys() | self._faces.keys())
            found = [
                StudentSummary(id=r.id if r else "", name=name, major=r.major if r else "", year=r.year if r else "",
                               faces=len(self._faces.get(name, ())))
                for name in names
                for r in [self._records.get(name)]
            ]
        return found[:limit], len(found) > limit

    def faces(self) -> dict[str, list[bytes]]:
        with self._lock:
            return {name: sorted(found) for name, found in self._faces.items() if found}

    def records(self, names: Iterable[str]) -> dict[str, StudentRecord]:
        with self._lock:
            return {name: self._records[name] for name in set(names) if name in self._records}


def student_store(settings: FaceSettings) -> StudentStore:
    """The configured ``StudentsTable`` through the process's shared DynamoDB client."""
    table = settings.require("students_table").students_table
    assert table is not None  # require() checked it
    return DynamoStudentStore(aws.client(settings, "dynamodb"), table)
