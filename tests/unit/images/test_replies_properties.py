"""Properties of iraas/images/replies.py: a reply (a web process's reply queue) is an
:class:`ImageResult` or dropped (None), whatever its body; a result round-trips through a reply."""

from __future__ import annotations

import json
from typing import Any

import pytest
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from iraas.images.jobs import ImageResult
from iraas.images.replies import _parse as parse_reply

pytestmark = pytest.mark.timeout(60)
PROPERTY = settings(
    max_examples=300, deadline=None, derandomize=True, database=None, suppress_health_check=[HealthCheck.too_slow]
)
request_ids = st.text("0123456789abcdef", min_size=32, max_size=32)
finite = st.floats(allow_nan=False, allow_infinity=False)  # NaN is not equal to itself: no round trip

# Any JSON document; integers up to 400 digits (JSON has no bound; a float has).
json_values = st.recursive(
    st.none() | st.booleans() | st.floats() | st.integers() | st.integers(-(10**400), 10**400) | st.text(max_size=20),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=10), inner, max_size=4),
    max_leaves=20,
)
DEEP = "[" * 100_000 + "]" * 100_000  # deeper than the JSON parser recurses
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
