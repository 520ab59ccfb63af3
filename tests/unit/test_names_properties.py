"""Properties of iraas/names.py: a name built from user input is one plain, bounded segment.

A file name a user chose becomes a safe name (no path, no leading dot, a short extension kept); any
text becomes a bounded segment; text round-trips through S3's ASCII metadata, and any metadata value
someone else wrote reads as text or None.
"""

from __future__ import annotations

import re

import pytest
from hypothesis import example, given, settings
from hypothesis import strategies as st

from iraas.names import MAX_NAME_CHARS, from_metadata, safe_name, safe_segment, to_metadata

pytestmark = pytest.mark.timeout(60)
PROPERTY = settings(max_examples=300, deadline=None, derandomize=True, database=None)
SAFE_CHARS = re.compile(r"[A-Za-z0-9._-]+")

# Anything a user can type, paths and traversal attempts made likely.
user_text = st.one_of(
    st.text(max_size=300),
    st.lists(st.sampled_from(["..", ".", "", "a", "cat.jpg", "\\", "C:", "\0", "\n", "é", "%2e%2e"]), max_size=8).map("/".join),
)


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
