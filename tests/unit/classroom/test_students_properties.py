"""Properties of iraas/classroom/students.py: a student import is records or :class:`InvalidStudents`
(:class:`TooManyStudents` past the bounds), whatever its body; records round-trip through JSON, and
the attendance CSV never holds a cell a spreadsheet would run as a formula."""

from __future__ import annotations

import csv
import io
import json
from dataclasses import asdict
from typing import Any

import pytest
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from iraas.classroom.students import (
    FORMULA_STARTS,
    MAX_NAME_CHARS,
    InvalidStudents,
    StudentRecord,
    TooManyStudents,
    csv_text,
    parse_students,
    parse_students_json,
)

pytestmark = pytest.mark.timeout(60)
PROPERTY = settings(
    max_examples=300, deadline=None, derandomize=True, database=None, suppress_health_check=[HealthCheck.too_slow]
)

# Any JSON document; integers up to 400 digits (JSON has no bound; a float has).
json_values = st.recursive(
    st.none() | st.booleans() | st.floats() | st.integers() | st.integers(-(10**400), 10**400) | st.text(max_size=20),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=10), inner, max_size=4),
    max_leaves=20,
)
DEEP = "[" * 100_000 + "]" * 100_000  # deeper than the JSON parser recurses
cells = st.one_of(
    st.text(max_size=30).filter(lambda t: t.strip()),
    st.sampled_from(["=1+1", "+CMD", "-1", "@SUM(A1)", "\tx", "\rx", 'a,"b"', "line\nbreak", "1"]),
)
records = st.builds(StudentRecord, cells, cells, cells, cells).map(
    lambda r: StudentRecord(*(v.strip() for v in (r.id, r.name, r.major, r.year)))
)
unique_records = st.lists(records, min_size=1, max_size=8, unique_by=lambda r: r.name)


@PROPERTY
@given(text=st.one_of(st.text(max_size=200), st.binary(max_size=100), json_values.map(json.dumps)))
@example(text=DEEP)
@example(text=b"\xff\xfe")
@example(text='[{"id": 1, "name": "a", "major": "b", "year": true}]')
def test_any_students_body_is_records_or_invalid(text: str | bytes) -> None:
    try:
        got = parse_students_json(text)
    except (InvalidStudents, TooManyStudents):
        return
    assert got and all(isinstance(r, StudentRecord) for r in got)
    assert len({r.name for r in got}) == len(got)
    assert all(0 < len(v) <= MAX_NAME_CHARS and v == v.strip() for r in got for v in asdict(r).values())


@PROPERTY
@given(students=unique_records, as_object=st.booleans())
def test_student_records_round_trip_through_json(students: list[StudentRecord], as_object: bool) -> None:
    data: Any = asdict(students[0]) if as_object else [asdict(r) for r in students]
    assert parse_students_json(json.dumps(data)) == (students[:1] if as_object else students)
    assert parse_students(data) == parse_students_json(json.dumps(data).encode())


@PROPERTY
@given(students=unique_records)
def test_the_attendance_csv_has_every_student_and_no_formula(students: list[StudentRecord]) -> None:
    rows = list(csv.reader(io.StringIO(csv_text(students))))
    assert rows[0] == ["name", "major", "year"]
    assert len(rows) == len(students) + 1
    for row in rows[1:]:
        assert len(row) == 3
        assert not any(cell.startswith(FORMULA_STARTS) for cell in row), row
        assert not any("\r" in cell for cell in row)
    # Each name as it was typed, a ' before a formula's first character, a CR read as a line feed.
    expected = {("'" if r.name.startswith(FORMULA_STARTS) else "") + r.name for r in students}
    assert {row[0] for row in rows[1:]} == {n.replace("\r\n", "\n").replace("\r", "\n") for n in expected}
