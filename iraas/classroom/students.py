"""Student records: the course's ``{id, name, major, year}`` as imported (a JSON body or a file,
bounded before it is parsed), as listed, and as the attendance CSV shows them.

Where they are kept, with each student's enrolled faces: ``iraas/classroom/student_store.py``.
Standard library only: the web tier imports this module.
"""

from __future__ import annotations

import csv
import io
import json
from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from iraas.errors import InvalidRequest, TooLarge

CSV_HEADER = ("name", "major", "year")
# A cell that starts with one of these is a formula to Excel, LibreOffice and Sheets (OWASP's CSV
# injection rule: = + - @, tab, carriage return); a leading ' makes it text.
FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")
MAX_NAME_CHARS = 200
# What one import (a POST /v1/students body or a file) may hold: a course's roster is a few
# hundred. 5,000 students are 50 DynamoDB reads (100 names a BatchGetItem) and, for those new or
# changed, at most 50 writes (100 updates a TransactWriteItems); a re-import of the same file writes
# nothing. Well inside API Gateway's 29 s.
MAX_STUDENTS_BYTES = 1024 * 1024
MAX_STUDENTS = 5000
MAX_LISTED_STUDENTS = 1000  # what one listing shows at most


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


@dataclass(frozen=True)
class StudentImport:
    """What an import did: how many of its students were new (no record before: none, or faces
    alone), changed (a record whose id, major or year differed) and unchanged (not written)."""

    new: int = 0
    changed: int = 0
    unchanged: int = 0

    @property
    def imported(self) -> int:
        """The students of the import (the last record of a name counted once)."""
        return self.new + self.changed + self.unchanged

    def as_json(self) -> dict[str, int]:
        """``POST /v1/students``'s answer: ``imported`` as before, then the three counts."""
        return {"imported": self.imported, "new": self.new, "changed": self.changed, "unchanged": self.unchanged}

    def describe(self) -> str:
        return f"{self.imported} ({self.new} new, {self.changed} changed, {self.unchanged} unchanged)"


class UnknownStudent(LookupError):
    """No student of that name in the store."""


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
