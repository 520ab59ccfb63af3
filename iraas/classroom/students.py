"""Student records and enrolled face descriptors in DynamoDB, and the attendance CSV.

One item per student in ``StudentsTable``, keyed by ``name`` (the name a face is recognised as):
``{name, id, major, year}`` from ``iraas students import`` (or ``POST /v1/students``), plus ``faces``,
a binary set of descriptors (512-byte float32 vectors) from ``iraas faces enroll`` / ``import-encodings``
or a photo posted to ``/v1/students/{name}/photos``. A set makes enrolling the same photo twice a
no-op, and importing records never touches the faces.
The face function reads the table on every video, so enrolment takes effect without a redeploy.

Only boto3 here: the web tier imports this module.
"""

from __future__ import annotations

import csv
import io
import json
import time
from collections import Counter
from collections.abc import Iterable, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from botocore.exceptions import ClientError

from iraas import aws
from iraas.errors import InvalidRequest, TooLarge

if TYPE_CHECKING:
    from iraas.classroom.settings import FaceSettings

CSV_HEADER = ("name", "major", "year")
# A cell that starts with one of these is a formula to Excel, LibreOffice and Sheets (OWASP's CSV
# injection rule: = + - @, tab, carriage return); a leading ' makes it text.
FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")
MAX_NAME_CHARS = 200
# What one import (a POST /v1/students body or a file) may hold: a course's roster is a few
# hundred. 5,000 new students are 250 DynamoDB calls, 5,000 known ones 50 reads and 5,000 updates
# made 8 at a time: either well inside API Gateway's 29 s.
MAX_STUDENTS_BYTES = 1024 * 1024
MAX_STUDENTS = 5000
BATCH_WRITE_LIMIT = 25  # PutRequests per BatchWriteItem (DynamoDB's maximum)
UPDATE_THREADS = 8  # UpdateItems in flight when the records of students already in the table change
MAX_FACES_PER_CALL = 100  # keeps one update well under DynamoDB's 400 KB item limit
BATCH_GET_LIMIT = 100  # keys per BatchGetItem
MAX_UNPROCESSED_RETRIES = 8  # rounds of asking again for keys DynamoDB left unprocessed
# What one listing reads at most: this many students, from at most this many Scan pages (1 MB each;
# an item's descriptors are read with it, counted, and dropped with its page).
MAX_LISTED_STUDENTS = 1000
MAX_LIST_PAGES = 32
CONDITION_FAILED = "ConditionalCheckFailedException"  # the item a condition names is not there


class InvalidStudents(InvalidRequest):
    """The records file or body is not a list of {id, name, major, year}."""

    def __init__(self, message: str) -> None:
        super().__init__("invalid_students", message)


class TooManyStudents(TooLarge):
    """Over MAX_STUDENTS_BYTES (``code`` "too_large") or MAX_STUDENTS ("too_many_students"),
    checked before the records are."""


@dataclass(frozen=True)
class StudentRecord:
    id: str
    name: str
    major: str
    year: str


class UnknownStudent(LookupError):
    """No item of that name in the table."""


@dataclass(frozen=True)
class StudentSummary:
    """A student as listed: the record (empty fields if faces came first) and how many faces are enrolled."""

    id: str
    name: str
    major: str
    year: str
    faces: int


def _text(value: Any, field: str, index: int) -> str:
    if isinstance(value, bool) or not isinstance(value, (str, int, float)):
        raise InvalidStudents(f"student {index}: {field!r} must be text or a number, not {value!r}")
    text = str(value).strip()
    if not text:
        raise InvalidStudents(f"student {index}: {field!r} is empty")
    if len(text) > MAX_NAME_CHARS:
        raise InvalidStudents(f"student {index}: {field!r} is longer than {MAX_NAME_CHARS} characters")
    return text


def parse_students(data: Any) -> list[StudentRecord]:
    """The course format: a JSON list (or one object) of ``{"id", "name", "major", "year"}``."""
    items = [data] if isinstance(data, dict) else data
    if not isinstance(items, list) or not items:
        raise InvalidStudents("expected a non-empty JSON list of {id, name, major, year} objects")
    if len(items) > MAX_STUDENTS:  # before any record is looked at
        raise TooManyStudents(
            "too_many_students", f"{len(items):,} students; one import takes at most {MAX_STUDENTS:,}"
        )
    records = []
    for index, item in enumerate(items):
        if not isinstance(item, dict):
            raise InvalidStudents(f"student {index} is not an object")
        missing = [f for f in ("id", "name", "major", "year") if f not in item]
        if missing:
            raise InvalidStudents(f"student {index} lacks {', '.join(missing)}")
        records.append(StudentRecord(*(_text(item[f], f, index) for f in ("id", "name", "major", "year"))))
    counts = Counter(r.name for r in records)  # one pass (names.count per name was quadratic)
    duplicates = sorted(n for n, count in counts.items() if count > 1)
    if duplicates:
        raise InvalidStudents(f"names must be unique (faces are matched by name): {', '.join(duplicates)}")
    return records


def parse_students_json(text: str | bytes) -> list[StudentRecord]:
    """:func:`parse_students` of a JSON text of at most MAX_STUDENTS_BYTES; InvalidStudents if not."""
    # A text longer than the limit in characters is longer in bytes: no need to encode it to know.
    size = len(text) if isinstance(text, bytes) or len(text) > MAX_STUDENTS_BYTES else len(text.encode())
    if size > MAX_STUDENTS_BYTES:  # before parsing: the parse is then bounded too
        raise TooManyStudents(
            "too_large", f"the student records are {size:,} bytes; the limit is {MAX_STUDENTS_BYTES:,} bytes"
        )
    try:
        data = json.loads(text)
    except RecursionError:  # [[[[...: the C parser refuses to recurse past the interpreter's limit
        raise InvalidStudents("not JSON we accept: nested too deeply") from None
    except ValueError as exc:
        raise InvalidStudents(f"not JSON: {exc}") from None
    return parse_students(data)


def read_students_file(path: str | Path) -> list[StudentRecord]:
    """:func:`parse_students_json` of a file, whose size is checked before it is read."""
    size = Path(path).stat().st_size
    if size > MAX_STUDENTS_BYTES:
        raise TooManyStudents("too_large", f"{size:,} bytes; the limit is {MAX_STUDENTS_BYTES:,} bytes")
    return parse_students_json(Path(path).read_bytes())


def csv_cell(value: str) -> str:
    """``value`` as a CSV cell a spreadsheet shows as text: a leading formula character gets a '.

    OWASP's rule for CSV injection. It changes what a cell reads, so a year of "-1" reads "'-1".
    A carriage return becomes a line feed, which the writer quotes (it quotes only the characters
    of its line terminator, "\n"): a bare CR would end the row for some readers.
    """
    cell = "'" + value if value.startswith(FORMULA_STARTS) else value
    return cell.replace("\r\n", "\n").replace("\r", "\n")


def csv_text(records: Iterable[StudentRecord]) -> str:
    """``name,major,year`` then one row per student, sorted by name; LF line ends.

    RFC 4180 quoting (a cell with a comma, quote or line break is quoted, quotes doubled), and no
    cell can start a formula (:func:`csv_cell`): names and majors come from whoever imported them.
    """
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(CSV_HEADER)
    for record in sorted(records, key=lambda r: r.name):
        writer.writerow((csv_cell(record.name), csv_cell(record.major), csv_cell(record.year)))
    return out.getvalue()


class StudentStore:
    """``StudentsTable`` through a boto3 DynamoDB client (low-level, so binary sets stay bytes)."""

    def __init__(self, dynamodb: Any, table: str, sleep: Any = time.sleep) -> None:
        self._db, self._table, self._sleep = dynamodb, table, sleep

    def put_students(self, records: Iterable[StudentRecord]) -> int:
        """Create or update records; enrolled faces are kept. Returns how many were written.

        Which students the table has already is read first (BatchGetItem, 100 names a call, the
        name alone). A new student is Put, 25 a call (BatchWriteItem). A student the table has (a
        record, faces, or both) is updated in place, an UpdateItem that sets only the record's
        fields, several at once: a Put would replace the item and its faces, and carrying faces
        read beforehand would lose one enrolled in between. (TransactWriteItems would batch the
        updates, but moto copies the whole table for each of its actions: the embedded stack
        would take minutes.) A student created by someone else between the read and the Put loses
        what that wrote: only the CLI enrols faces before a record exists.
        """
        latest = {record.name: record for record in records}  # one write per item
        existing = {item["name"]["S"] for item in self._get_items(list(latest), name_only=True)}
        new = [record for name, record in latest.items() if name not in existing]
        for start in range(0, len(new), BATCH_WRITE_LIMIT):
            self._put_new(new[start : start + BATCH_WRITE_LIMIT])
        changed = [record for name, record in latest.items() if name in existing]
        if changed:
            with ThreadPoolExecutor(min(UPDATE_THREADS, len(changed)), thread_name_prefix="students") as pool:
                list(pool.map(self._update_record, changed))  # list(): the first error is raised here
        return len(latest)

    def _put_new(self, records: list[StudentRecord]) -> None:
        """One BatchWriteItem of Puts, and again for what DynamoDB left unprocessed (bounded rounds)."""
        request: dict[str, Any] = {self._table: [{"PutRequest": {"Item": {
            "name": {"S": r.name}, "id": {"S": r.id}, "major": {"S": r.major}, "year": {"S": r.year},
        }}} for r in records]}
        for attempt in range(MAX_UNPROCESSED_RETRIES):
            request = self._db.batch_write_item(RequestItems=request).get("UnprocessedItems") or {}
            if not request:
                return
            self._sleep(min(2.0, 0.05 * 2**attempt))  # throttled: back off, then write the rest
        raise RuntimeError("DynamoDB kept returning unprocessed student records")

    def _update_record(self, record: StudentRecord) -> None:
        self._db.update_item(
            TableName=self._table,
            Key={"name": {"S": record.name}},
            UpdateExpression="SET #id = :id, major = :major, #year = :year",
            ExpressionAttributeNames={"#id": "id", "#year": "year"},
            ExpressionAttributeValues={
                ":id": {"S": record.id}, ":major": {"S": record.major}, ":year": {"S": record.year}
            },
        )

    def add_faces(self, name: str, descriptors: list[bytes], must_exist: bool = False) -> None:
        """Add descriptors to a person (a set: the same descriptor twice is stored once).

        The CLI may enrol faces before the records are imported; an enrolment over HTTP is for a
        student that exists (``must_exist``), and raises UnknownStudent if one was deleted meanwhile."""
        if not name.strip() or len(name) > MAX_NAME_CHARS:
            raise InvalidStudents(f"a name must be 1-{MAX_NAME_CHARS} characters")
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
        """Whether the table has an item of that name (a record, enrolled faces, or both)."""
        if not name or len(name) > MAX_NAME_CHARS:
            return False
        item = self._db.get_item(
            TableName=self._table, Key={"name": {"S": name}}, ProjectionExpression="#n",
            ExpressionAttributeNames={"#n": "name"}, ConsistentRead=True,
        ).get("Item")
        return item is not None

    def delete(self, name: str) -> bool:
        """Remove a student's record and faces; False if there was no such student."""
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
        """Up to ``limit`` students sorted by name, and whether there were more than were read.

        A Scan has no order, so past the limit the students listed are an arbitrary subset."""
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
        """Every enrolled descriptor by name (one strongly consistent scan)."""
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
        """The records of ``names`` that have one (a face may be enrolled before its record)."""
        found: dict[str, StudentRecord] = {}
        for item in self._get_items(sorted(set(names))):
            if "major" in item:
                record = StudentRecord(
                    id=item.get("id", {}).get("S", ""), name=item["name"]["S"],
                    major=item["major"]["S"], year=item.get("year", {}).get("S", ""),
                )
                found[record.name] = record
        return found

    def _get_items(self, names: list[str], name_only: bool = False) -> Iterator[dict[str, Any]]:
        """The items of ``names`` that exist (BatchGetItem, 100 keys a call, strongly consistent),
        asking again for the keys DynamoDB leaves unprocessed, in bounded rounds."""
        for start in range(0, len(names), BATCH_GET_LIMIT):
            chunk = names[start : start + BATCH_GET_LIMIT]
            request: dict[str, Any] = {self._table: {
                "Keys": [{"name": {"S": n}} for n in chunk], "ConsistentRead": True,
                **({"ProjectionExpression": "#n", "ExpressionAttributeNames": {"#n": "name"}} if name_only else {}),
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


def student_store(settings: FaceSettings) -> StudentStore:
    """The configured ``StudentsTable`` through the process's shared DynamoDB client."""
    table = settings.require("students_table").students_table
    assert table is not None  # require() checked it
    return StudentStore(aws.client(settings, "dynamodb"), table)
