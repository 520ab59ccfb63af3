"""Properties of the parsers of messages, settings and imports that other parties write.

- A request message (the request queue) is an :class:`ImageRequest` or :class:`MalformedRequest`,
  whatever its body; one that parses points only at its own request's input; a request round-trips.
- A reply (a web process's reply queue) is an :class:`ImageResult` or dropped (None); a result
  round-trips.
- ``IRAAS_API_KEY`` is the keys it lists or a ConfigError that never quotes a key.
- A student import is records or :class:`InvalidStudents` (:class:`TooManyStudents` past the
  bounds); records round-trip through JSON, and the attendance CSV never holds a cell a spreadsheet
  would run as a formula.
"""

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
from iraas.errors import ConfigError
from iraas.images import jobs
from iraas.images.jobs import ImageRequest, ImageResult, MalformedRequest
from iraas.images.replies import _parse as parse_reply
from iraas.web.auth import MAX_KEY_CHARS, MIN_KEY_CHARS, parse_keys

pytestmark = pytest.mark.timeout(60)

PROPERTY = settings(
    max_examples=300, deadline=None, derandomize=True, database=None, suppress_health_check=[HealthCheck.too_slow]
)

request_ids = st.text("0123456789abcdef", min_size=32, max_size=32)
owners = st.from_regex(r"[A-Za-z0-9]{1,80}", fullmatch=True)
finite = st.floats(allow_nan=False, allow_infinity=False)  # NaN is not equal to itself: no round trip
# Any JSON document; integers up to 400 digits (JSON has no bound; a float has).
json_values = st.recursive(
    st.none() | st.booleans() | st.floats() | st.integers() | st.integers(-(10**400), 10**400) | st.text(max_size=20),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=10), inner, max_size=4),
    max_leaves=20,
)
REQUEST_FIELDS = ("v", "id", "name", "bucket", "key", "submitted_at", "reply_to")
DEEP = "[" * 100_000 + "]" * 100_000  # deeper than the JSON parser recurses


@st.composite
def requests(draw: st.DrawFn) -> ImageRequest:
    request_id, owner, name = draw(request_ids), draw(owners), draw(st.text(max_size=120))
    return ImageRequest(
        id=request_id,
        name=name,
        bucket=draw(st.text(max_size=63)),
        key=jobs.input_key(owner, request_id, name),
        submitted_at=draw(finite),
        reply_to=draw(st.one_of(st.none(), st.text(min_size=1, max_size=100))),
    )


@st.composite
def request_like(draw: st.DrawFn) -> dict[str, Any]:
    """A message with the schema's fields, each either right or any JSON value; some left out."""
    good = json.loads(draw(requests()).to_message())
    return {
        field: draw(st.one_of(st.just(good.get(field)), json_values))
        for field in draw(st.sets(st.sampled_from(REQUEST_FIELDS)))
    }


def _request_or_malformed(body: Any) -> None:
    try:
        request = ImageRequest.from_message(body)
    except MalformedRequest:
        return
    # A request that parses reads only its own input: inputs/<caller>/<its id>/<its safe name>.
    assert jobs.is_valid_id(request.id)
    owner = jobs.owner_from_input_key(request.key)
    assert owner is not None
    assert request.key == jobs.input_key(owner, request.id, request.name)
    assert ".." not in request.key.split("/")


@PROPERTY
@given(request=requests())
def test_a_request_round_trips_through_its_message(request: ImageRequest) -> None:
    assert ImageRequest.from_message(request.to_message()) == request


@PROPERTY
@given(body=st.one_of(st.text(max_size=200), json_values.map(json.dumps)))
@example(body=DEEP)
@example(body='{"v": 1, "id": "0"}')
def test_any_message_body_is_a_request_or_malformed(body: str) -> None:
    _request_or_malformed(body)


@PROPERTY
@given(message=request_like())
@example(message={"v": 1, "id": "0" * 32, "name": "a", "bucket": "b", "key": "inputs/o/" + "0" * 32 + "/a",
                  "submitted_at": 10**400})  # an integer no float holds: OverflowError, not ValueError
@example(message={"v": 1, "id": "0" * 32, "name": "../../x", "bucket": "b", "key": "inputs/o/" + "0" * 32 + "/../../x"})
def test_a_request_with_any_field_values_is_a_request_or_malformed(message: dict[str, Any]) -> None:
    _request_or_malformed(json.dumps(message))


top5_entries = st.fixed_dictionaries({"label": st.text(max_size=10), "wnid": st.text(max_size=10), "confidence": finite})


@PROPERTY
@given(
    request_id=request_ids,
    name=st.text(max_size=60),
    outcome=st.one_of(
        st.tuples(st.text(max_size=20), st.text(max_size=10), finite, st.lists(top5_entries, max_size=5)),
        st.tuples(st.text(max_size=20), st.text(max_size=60)),  # a failure's code and message
    ),
    completed_at=finite,
)
def test_a_result_round_trips_through_a_reply(request_id: str, name: str, outcome: tuple, completed_at: float) -> None:
    if len(outcome) == 4:
        label, wnid, confidence, top5 = outcome
        result = ImageResult(request_id, name, "done", label, wnid, confidence, tuple(top5), completed_at=completed_at)
    else:
        result = ImageResult.failed(request_id, name, *outcome)
        result = ImageResult(**{**result.__dict__, "completed_at": completed_at})
    assert parse_reply({"Body": result.to_json()}) == result


@PROPERTY
@given(body=st.one_of(st.none(), st.binary(max_size=40), st.text(max_size=100), json_values.map(json.dumps)))
@example(body="1")  # JSON that is not an object
@example(body='"text"')
@example(body=DEEP)
def test_any_reply_body_is_a_result_or_dropped(body: Any) -> None:
    """A reply that is not a result is dropped (None): it never stops the thread that wakes waiters."""
    got = parse_reply({"Body": body})
    assert got is None or isinstance(got, ImageResult)


# ---- IRAAS_API_KEY ------------------------------------------------------------------------

key_chars = st.characters(min_codepoint=0x21, max_codepoint=0x7E, exclude_characters=",")  # printable, no space
valid_keys = st.text(key_chars, min_size=MIN_KEY_CHARS, max_size=MAX_KEY_CHARS)


@PROPERTY
@given(keys=st.lists(valid_keys, min_size=1, max_size=4), spaces=st.sampled_from(["", " ", "  \t"]))
def test_api_keys_round_trip(keys: list[str], spaces: str) -> None:
    raw = f"{spaces},{spaces}".join(keys)
    assert parse_keys(spaces + raw + spaces) == tuple(keys)


@PROPERTY
@given(
    parts=st.lists(st.one_of(valid_keys, st.text(max_size=300)), min_size=1, max_size=4),
)
@example(parts=["k" * 16, "secret with a space in it"])
@example(parts=["k" * 16, ""])
def test_any_api_key_setting_is_its_keys_or_an_error_that_quotes_none(parts: list[str]) -> None:
    raw = ",".join(parts)
    try:
        keys = parse_keys(raw)
    except ConfigError as exc:
        for part in parts:
            secret = part.strip()
            if len(secret) >= MIN_KEY_CHARS:
                assert secret not in str(exc)
        return
    assert keys == (tuple(p.strip() for p in raw.split(",")) if raw.strip() else ())
    assert all(MIN_KEY_CHARS <= len(k) <= MAX_KEY_CHARS and k.isascii() and k.isprintable() and " " not in k for k in keys)


# ---- student imports ----------------------------------------------------------------------

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
