"""Properties of iraas/web/auth.py's ``IRAAS_API_KEY``: the setting is the keys it lists or a
ConfigError that never quotes a key; keys round-trip, whatever the spaces around them."""

from __future__ import annotations

import pytest
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from iraas.errors import ConfigError
from iraas.web.auth import MAX_KEY_CHARS, MIN_KEY_CHARS, parse_keys

pytestmark = pytest.mark.timeout(60)
PROPERTY = settings(
    max_examples=300, deadline=None, derandomize=True, database=None, suppress_health_check=[HealthCheck.too_slow]
)
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
