"""Student records and enrolled face descriptors in DynamoDB, and the attendance CSV.

One item per student in ``StudentsTable``, keyed by ``name`` (the name a face is recognised as):
``{name, id, major, year}`` from ``iraas students import``, plus ``faces``, a binary set of
descriptors (512-byte float32 vectors) from ``iraas faces enroll`` / ``import-encodings``. A set
makes enrolling the same photo twice a no-op, and importing records never touches the faces.
The face function reads the table on every video, so enrolment takes effect without a redeploy.

Only boto3 here: the web tier imports this module.
"""

from __future__ import annotations

import csv
import io
import json
import time
from collections.abc import Iterable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from iraas import aws

if TYPE_CHECKING:
    from iraas.classroom.settings import FaceSettings

CSV_HEADER = ("name", "major", "year")
MAX_NAME_CHARS = 200
MAX_FACES_PER_CALL = 100  # keeps one update well under DynamoDB's 400 KB item limit
BATCH_GET_LIMIT = 100  # keys per BatchGetItem
MAX_UNPROCESSED_RETRIES = 8  # rounds of asking again for keys DynamoDB left unprocessed


class InvalidStudents(ValueError):
    """The records file or body is not a list of {id, name, major, year}."""


@dataclass(frozen=True)
class StudentRecord:
    id: str
    name: str
    major: str
    year: str


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
    records = []
    for index, item in enumerate(items):
        if not isinstance(item, dict):
            raise InvalidStudents(f"student {index} is not an object")
        missing = [f for f in ("id", "name", "major", "year") if f not in item]
        if missing:
            raise InvalidStudents(f"student {index} lacks {', '.join(missing)}")
        records.append(StudentRecord(*(_text(item[f], f, index) for f in ("id", "name", "major", "year"))))
    names = [r.name for r in records]
    duplicates = sorted({n for n in names if names.count(n) > 1})
    if duplicates:
        raise InvalidStudents(f"names must be unique (faces are matched by name): {', '.join(duplicates)}")
    return records


def parse_students_json(text: str | bytes) -> list[StudentRecord]:
    try:
        return parse_students(json.loads(text))
    except ValueError as exc:
        if isinstance(exc, InvalidStudents):
            raise
        raise InvalidStudents(f"not JSON: {exc}") from None


def csv_text(records: Iterable[StudentRecord]) -> str:
    """``name,major,year`` then one row per student, sorted by name; LF line ends."""
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(CSV_HEADER)
    for record in sorted(records, key=lambda r: r.name):
        writer.writerow((record.name, record.major, record.year))
    return out.getvalue()


class StudentStore:
    """``StudentsTable`` through a boto3 DynamoDB client (low-level, so binary sets stay bytes)."""

    def __init__(self, dynamodb: Any, table: str, sleep: Any = time.sleep) -> None:
        self._db, self._table, self._sleep = dynamodb, table, sleep

    def put_students(self, records: Iterable[StudentRecord]) -> int:
        """Create or update records; enrolled faces are kept. Returns how many were written."""
        count = 0
        for record in records:
            self._db.update_item(
                TableName=self._table,
                Key={"name": {"S": record.name}},
                UpdateExpression="SET #id = :id, major = :major, #year = :year",
                ExpressionAttributeNames={"#id": "id", "#year": "year"},
                ExpressionAttributeValues={
                    ":id": {"S": record.id}, ":major": {"S": record.major}, ":year": {"S": record.year}
                },
            )
            count += 1
        return count

    def add_faces(self, name: str, descriptors: list[bytes]) -> None:
        """Add descriptors to a person (a set: the same descriptor twice is stored once)."""
        if not name.strip() or len(name) > MAX_NAME_CHARS:
            raise InvalidStudents(f"a name must be 1-{MAX_NAME_CHARS} characters")
        for start in range(0, len(descriptors), MAX_FACES_PER_CALL):
            self._db.update_item(
                TableName=self._table,
                Key={"name": {"S": name}},
                UpdateExpression="ADD faces :faces",
                ExpressionAttributeValues={":faces": {"BS": descriptors[start : start + MAX_FACES_PER_CALL]}},
            )

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
        wanted = sorted(set(names))
        found: dict[str, StudentRecord] = {}
        for start in range(0, len(wanted), BATCH_GET_LIMIT):
            chunk = wanted[start : start + BATCH_GET_LIMIT]
            request = {self._table: {"Keys": [{"name": {"S": n}} for n in chunk],
                                     "ConsistentRead": True}}
            for attempt in range(MAX_UNPROCESSED_RETRIES):
                response = self._db.batch_get_item(RequestItems=request)
                for item in response.get("Responses", {}).get(self._table, []):
                    if "major" in item:
                        record = StudentRecord(
                            id=item.get("id", {}).get("S", ""), name=item["name"]["S"],
                            major=item["major"]["S"], year=item.get("year", {}).get("S", ""),
                        )
                        found[record.name] = record
                request = response.get("UnprocessedKeys") or {}
                if not request:
                    break
                self._sleep(min(2.0, 0.05 * 2**attempt))  # throttled: back off, then ask again
            else:
                raise RuntimeError("DynamoDB kept returning unprocessed keys")
        return found


def student_store(settings: FaceSettings) -> StudentStore:
    """The configured ``StudentsTable`` through the process's shared DynamoDB client."""
    table = settings.require("students_table").students_table
    assert table is not None  # require() checked it
    return StudentStore(aws.client(settings, "dynamodb"), table)
