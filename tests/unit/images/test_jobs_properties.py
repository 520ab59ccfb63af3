"""Properties of iraas/images/jobs.py: keys built from user input, and request messages others write.

- A file name, an owner or an id that a user chose never steers a key outside its prefix: the keys
  stay under their folder, have no ``..`` (or empty) segment and no control character, and fit S3's
  1024-byte limit; an Idempotency-Key gives the same request id each time for the same caller.
- A request message (the request queue) is an :class:`ImageRequest` or :class:`MalformedRequest`,
  whatever its body; one that parses points only at its own request's input, and the image it
  carries, if any, is its bytes or MalformedRequest; a request round-trips.
"""

from __future__ import annotations

import base64
import json
import re
from typing import Any

import pytest
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from iraas.images import jobs
from iraas.images.jobs import ImageRequest, MalformedRequest
from iraas.names import safe_name
from tests.support.keys import assert_contained, owners, request_ids, user_text

pytestmark = pytest.mark.timeout(60)
PROPERTY = settings(max_examples=300, deadline=None, derandomize=True, database=None)


finite = st.floats(allow_nan=False, allow_infinity=False)  # NaN is not equal to itself: no round trip

# Any JSON document; integers up to 400 digits (JSON has no bound; a float has).
json_values = st.recursive(
    st.none() | st.booleans() | st.floats() | st.integers() | st.integers(-(10**400), 10**400) | st.text(max_size=20),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=10), inner, max_size=4),
    max_leaves=20,
)
REQUEST_FIELDS = ("v", "id", "name", "bucket", "key", "submitted_at", "reply_to", "image_b64")
DEEP = "[" * 100_000 + "]" * 100_000  # deeper than the JSON parser recurses


# ---- keys ----------------------------------------------------------------------------------


@PROPERTY
@given(owner=owners, request_id=request_ids, name=user_text)
def test_input_key_stays_in_its_callers_request_folder(owner: str, request_id: str, name: str) -> None:
    key = jobs.input_key(owner, request_id, name)
    assert_contained(key, f"inputs/{owner}/{request_id}/")
    assert jobs.name_from_input_key(owner, request_id, key) == safe_name(name)
    assert jobs.owner_from_input_key(key) == owner


@PROPERTY
@given(request_id=request_ids, name=user_text)
def test_result_key_is_one_object_below_results(request_id: str, name: str) -> None:
    key = jobs.result_key(request_id, name)
    assert_contained(key, "results/")
    assert key == f"results/{safe_name(name)}/{request_id}.json"


@PROPERTY
@given(message_id=st.text(max_size=300))
@example(message_id="..")
@example(message_id="../../inputs/x")
def test_poison_key_is_one_object_below_errors(message_id: str) -> None:
    key = jobs.poison_key(message_id)
    assert_contained(key, "errors/")
    assert key.count("/") == 1


@PROPERTY
@given(owner=st.text(max_size=90), request_id=st.text(max_size=40))
@example(owner="..", request_id="0" * 32)
@example(owner="a/b", request_id="0" * 32)
@example(owner="a", request_id="../" + "0" * 29)
def test_keys_refuse_an_owner_or_id_that_is_not_one(owner: str, request_id: str) -> None:
    """An owner or a request id is only ever a checked segment: anything else is a ValueError."""
    try:
        prefix = jobs.input_prefix(owner, request_id)
    except ValueError:
        assert not (re.fullmatch(r"[A-Za-z0-9]{1,80}", owner) and jobs.is_valid_id(request_id))
    else:
        assert_contained(prefix + "x", "inputs/")
        assert prefix.count("/") == 3


@PROPERTY
@given(key=st.one_of(st.text(max_size=140), st.from_regex(r"[!-~]{1,128}", fullmatch=True)), owner=st.text(max_size=20))
def test_idempotency_ids_are_request_ids_per_caller(key: str, owner: str) -> None:
    """A valid Idempotency-Key gives a valid request id, the same each time for the same caller."""
    try:
        request_id = jobs.id_for_idempotency_key(key, owner)
    except ValueError:
        return
    assert jobs.is_valid_id(request_id)
    assert jobs.id_for_idempotency_key(key, owner) == request_id
    assert jobs.id_for_idempotency_key(key, owner + "x") != request_id


# ---- request messages ----------------------------------------------------------------------

# Parsing others' messages: a slow example is no reason to stop.
PARSING = settings(
    max_examples=300, deadline=None, derandomize=True, database=None, suppress_health_check=[HealthCheck.too_slow]
)
any_owners = st.from_regex(r"[A-Za-z0-9]{1,80}", fullmatch=True)  # every owner a key may name


@st.composite
def requests(draw: st.DrawFn) -> ImageRequest:
    request_id, owner, name = draw(request_ids), draw(any_owners), draw(st.text(max_size=120))
    return ImageRequest(
        id=request_id,
        name=name,
        bucket=draw(st.text(max_size=63)),
        key=jobs.input_key(owner, request_id, name),
        submitted_at=draw(finite),
        reply_to=draw(st.one_of(st.none(), st.text(min_size=1, max_size=100))),
        image_b64=draw(st.one_of(st.none(), st.binary(max_size=64).map(lambda b: base64.b64encode(b).decode()),
                                 st.text(max_size=40))),
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
    try:
        carried = request.carried_image()
    except MalformedRequest:
        return
    assert carried is None or isinstance(carried, bytes)


@PARSING
@given(request=requests())
def test_a_request_round_trips_through_its_message(request: ImageRequest) -> None:
    assert ImageRequest.from_message(request.to_message()) == request


@PARSING
@given(body=st.one_of(st.text(max_size=200), json_values.map(json.dumps)))
@example(body=DEEP)
@example(body='{"v": 1, "id": "0"}')
def test_any_message_body_is_a_request_or_malformed(body: str) -> None:
    _request_or_malformed(body)


@PARSING
@given(message=request_like())
@example(message={"v": 1, "id": "0" * 32, "name": "a", "bucket": "b", "key": "inputs/o/" + "0" * 32 + "/a",
                  "submitted_at": 10**400})  # an integer no float holds: OverflowError, not ValueError
@example(message={"v": 1, "id": "0" * 32, "name": "../../x", "bucket": "b", "key": "inputs/o/" + "0" * 32 + "/../../x"})
def test_a_request_with_any_field_values_is_a_request_or_malformed(message: dict[str, Any]) -> None:
    _request_or_malformed(json.dumps(message))
