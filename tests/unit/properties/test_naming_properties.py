"""Properties of every name and object key built from user input.

A file name, an id or a video key that a user chose never steers a key outside its prefix: the keys
stay under their folder, have no ``..`` (or empty) segment and no control character, and fit S3's
1024-byte limit. Physical resource names are valid for S3, SQS and DynamoDB, the same on every run,
and distinct for distinct logical ids.
"""

from __future__ import annotations

import re

import pytest
from hypothesis import example, given, settings
from hypothesis import strategies as st

from iraas.classroom import keys
from iraas.images import jobs
from iraas.local.provision.naming import DYNAMODB_NAME_MAX, S3_NAME_MAX, SQS_NAME_MAX, physical_name
from iraas.names import MAX_NAME_CHARS, from_metadata, safe_name, safe_segment, to_metadata

pytestmark = pytest.mark.timeout(60)

PROPERTY = settings(max_examples=300, deadline=None, derandomize=True, database=None)
S3_KEY_MAX_BYTES = 1024
SAFE_CHARS = re.compile(r"[A-Za-z0-9._-]+")

# Anything a user can type, paths and traversal attempts made likely.
user_text = st.one_of(
    st.text(max_size=300),
    st.lists(st.sampled_from(["..", ".", "", "a", "cat.jpg", "\\", "C:", "\0", "\n", "é", "%2e%2e"]), max_size=8).map("/".join),
)
request_ids = st.text("0123456789abcdef", min_size=32, max_size=32)
owners = st.from_regex(r"[A-Za-z0-9]{1,65}", fullmatch=True)  # what iraas.web.auth.caller_identity answers


def assert_contained(key: str, prefix: str) -> None:
    """``key`` is below ``prefix``, with no segment that climbs or hides, and fits S3."""
    assert key.startswith(prefix) and len(key) > len(prefix), key
    segments = key.split("/")
    assert not {"", ".", ".."} & set(segments), key
    assert not any(ord(c) < 0x20 or ord(c) == 0x7F for c in key), key
    assert len(key.encode()) <= S3_KEY_MAX_BYTES, key


@PROPERTY
@given(filename=st.one_of(st.none(), user_text))
@example(filename="../../etc/passwd")
@example(filename="C:\\photos\\my cat.JPG")
@example(filename="." * 300)
@example(filename="a." + "b" * 300)
def test_safe_name_is_one_plain_bounded_segment(filename: str | None) -> None:
    name = safe_name(filename)
    assert SAFE_CHARS.fullmatch(name), name
    assert not name.startswith((".", "_")) and name not in (".", "..")
    assert len(name) <= MAX_NAME_CHARS
    assert safe_name(name) == name  # a safe name is its own safe name


@PROPERTY
@given(filename=user_text)
def test_safe_name_keeps_a_short_extension(filename: str) -> None:
    """``my cat.JPG`` stays a ``.JPG``: the extension survives the shortening of a long name."""
    ext = re.fullmatch(r".*?[A-Za-z0-9]\w*(\.[A-Za-z0-9]{1,10})", filename.replace("\\", "/").split("/")[-1])
    if ext:
        assert safe_name(filename).endswith(ext.group(1))


@PROPERTY
@given(value=st.text(max_size=400), max_chars=st.integers(1, 200))
def test_safe_segment_is_one_bounded_segment(value: str, max_chars: int) -> None:
    segment = safe_segment(value, max_chars)
    assert SAFE_CHARS.fullmatch(segment)
    assert len(segment) <= max(max_chars, len("unknown"))


@PROPERTY
@given(text=st.text(max_size=200))
def test_metadata_round_trips_as_ascii(text: str) -> None:
    value = to_metadata(text)
    assert value.isascii()
    assert from_metadata(value) == (text or None)


@PROPERTY
@given(value=st.one_of(st.none(), st.text(max_size=60)))
def test_from_metadata_of_any_value_is_text_or_none(value: str | None) -> None:
    """A metadata value someone else wrote is the text it encodes, or None; never an exception."""
    got = from_metadata(value)
    assert got is None or isinstance(got, str)


# ---- phase 1 keys -------------------------------------------------------------------------


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


# ---- phase 2 keys -------------------------------------------------------------------------

video_keys = st.one_of(
    user_text,
    st.builds(
        lambda folder, stem, ext: f"{folder}/{stem}{ext}",
        user_text, st.text(max_size=40), st.sampled_from(keys.VIDEO_EXTENSIONS),
    ),
)


@PROPERTY
@given(key=video_keys)
@example(key="../../enrolments/x.mp4")
@example(key="Class 1/monday.mp4")
@example(key="enrolments/../enrolments/a.mp4")
@example(key="a/.MP4")
def test_csv_key_stays_beside_its_video(key: str) -> None:
    """The CSV of a video is in the video's folder, never climbs out, and is not a video or an enrolment."""
    try:
        csv = keys.csv_key(key)
    except ValueError:
        assert keys.normalise_key(key) == ""
        return
    assert csv.endswith(".csv")
    assert not {"", ".", ".."} & set(csv.split("/"))
    normalised = keys.normalise_key(key)
    assert csv.rpartition("/")[0] == normalised.rpartition("/")[0]
    assert keys.csv_key(csv) == csv  # idempotent: a CSV's CSV is itself
    if keys.is_video_key(key):
        assert not keys.is_video_key(csv)
        assert not keys.is_enrolment_key(csv)
        # ".csv" replaces the extension, so the CSV's key is no longer than the video's; a video
        # named only by its extension (".mp4", a stem to posixpath) gets ".mp4.csv".
        assert len(csv.encode()) <= len(key.encode()) + (len(".csv") if normalised.rpartition("/")[2].startswith(".") else 0)


@PROPERTY
@given(filename=user_text)
@example(filename="../enrolments/a.mp4")
@example(filename=".mp4")
def test_upload_key_is_a_plain_video_name_or_refused(filename: str) -> None:
    try:
        key = keys.upload_key(filename)
    except ValueError:
        return
    assert "/" not in key and SAFE_CHARS.fullmatch(key)
    assert keys.is_video_key(key) and not keys.is_enrolment_key(key)


@PROPERTY
@given(
    owner=owners,
    video_id=request_ids,
    filename=st.one_of(st.none(), user_text),
    ctype=st.one_of(st.none(), st.text(max_size=30)),
)
def test_owned_video_and_csv_keys_stay_in_the_callers_folder(
    owner: str, video_id: str, filename: str | None, ctype: str | None
) -> None:
    try:
        ext = keys.video_extension(filename, ctype)
    except ValueError:
        return
    video = keys.owned_video_key(owner, video_id, ext)
    assert_contained(video, f"videos/{owner}/")
    assert keys.is_video_key(video)
    assert keys.csv_key(video) == keys.owned_csv_key(owner, video_id)


@PROPERTY
@given(enrolment_id=request_ids, image_format=st.text(max_size=30))
@example(enrolment_id="0" * 32, image_format="../../x")
@example(enrolment_id="0" * 32, image_format="ß")
def test_enrolment_photo_key_names_its_enrolment(enrolment_id: str, image_format: str) -> None:
    key = keys.enrolment_photo_key(enrolment_id, image_format)
    assert_contained(key, keys.ENROLMENT_PREFIX)
    assert keys.enrolment_id_of(key) == enrolment_id
    assert keys.is_enrolment_key(key) and not keys.is_video_key(key)


# ---- physical names -----------------------------------------------------------------------

# CloudFormation's stack names and logical ids.
stack_names = st.from_regex(r"[A-Za-z][-A-Za-z0-9]{0,127}", fullmatch=True)
logical_ids = st.from_regex(r"[A-Za-z0-9]{1,255}", fullmatch=True)
SERVICES = {
    "s3": (S3_NAME_MAX, "", re.compile(r"[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]")),
    "sqs": (SQS_NAME_MAX, "", re.compile(r"[A-Za-z0-9_-]{1,80}")),
    "sqs-fifo": (SQS_NAME_MAX, ".fifo", re.compile(r"[A-Za-z0-9_-]{1,75}\.fifo")),
    "dynamodb": (DYNAMODB_NAME_MAX, "", re.compile(r"[A-Za-z0-9_.-]{3,255}")),
}


@PROPERTY
@given(stack=stack_names, logical_id=logical_ids, service=st.sampled_from(sorted(SERVICES)))
@example(stack="a", logical_id="B", service="s3")
@example(stack="a" * 128, logical_id="B" * 255, service="s3")
@example(stack="a--", logical_id="B", service="sqs-fifo")
def test_physical_names_are_valid_for_their_service(stack: str, logical_id: str, service: str) -> None:
    max_len, end, valid = SERVICES[service]
    name = physical_name(stack, logical_id, max_len, end)
    assert valid.fullmatch(name), name
    assert len(name) <= max_len
    assert "--" not in name  # never an S3 "xn--" prefix or "--ol-s3" suffix
    assert name == physical_name(stack, logical_id, max_len, end)  # a second run finds the first's


@PROPERTY
@given(stack=stack_names, ids=st.lists(logical_ids, min_size=2, max_size=6, unique=True), service=st.sampled_from(sorted(SERVICES)))
@example(stack="iraas", ids=["A" * 100 + "1", "A" * 100 + "2"], service="s3")  # differ only past the cut
def test_physical_names_are_distinct_for_distinct_logical_ids(stack: str, ids: list[str], service: str) -> None:
    max_len, end, _ = SERVICES[service]
    names = [physical_name(stack, logical_id, max_len, end) for logical_id in ids]
    assert len(set(names)) == len(names)
