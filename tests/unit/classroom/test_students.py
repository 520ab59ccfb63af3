"""iraas/classroom/students.py: the student records format, its import bounds and the attendance CSV.

An import is bounded in bytes and records and parsed in one pass. The findings these pin: 40,000
records (2 MB) took 25.6 s (a quadratic check for duplicate names); deep nesting was a 500; a student
named =HYPERLINK(...) went into the attendance CSV as a formula. (How the records are written in
batches: tests/integration/classroom/test_student_store.py.)"""

from __future__ import annotations

import json

import pytest

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


def test_the_course_records_format_is_parsed_and_checked():
    records = parse_students([{"id": 1, "name": " Ada ", "major": "CS", "year": 3}])
    assert records == [StudentRecord("1", "Ada", "CS", "3")]
    with pytest.raises(InvalidStudents, match="names must be unique"):
        parse_students([{"id": i, "name": "Ada", "major": "CS", "year": 3} for i in (1, 2)])
    with pytest.raises(InvalidStudents, match="'year' must be text or a number"):
        parse_students([{"id": 1, "name": "Ada", "major": "CS", "year": None}])


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


# ---- the attendance CSV ----------------------------------------------------------------------


def test_the_csv_has_a_header_then_one_quoted_row_per_student_by_name():
    rows = [StudentRecord("2", "Zoe", "Art, Design", "2"), StudentRecord("1", "Adam", "Physics", "senior")]
    assert csv_text(rows) == 'name,major,year\nAdam,Physics,senior\nZoe,"Art, Design",2\n'
    assert csv_text([]) == "name,major,year\n"


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
