"""Hypothesis strategies and a check shared by the property tests of object keys (iraas/names.py,
iraas/images/jobs.py, iraas/classroom/keys.py): whatever a user types, a key stays in its prefix."""

from __future__ import annotations

from hypothesis import strategies as st

S3_KEY_MAX_BYTES = 1024

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
