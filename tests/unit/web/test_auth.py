"""API keys (iraas/web/auth.py): what the web tier accepts, how a bad setting is told, and who the
caller is."""

from __future__ import annotations

import pytest

from iraas.errors import ConfigError
from iraas.web import auth
from iraas.web.errors import Forbidden, Unauthorized, http_error

KEY = "k" * 24
OTHER = "o" * 24


def test_no_key_configured_means_none_is_required():
    assert not auth.load_auth_settings({}).required
    assert not auth.load_auth_settings({"IRAAS_API_KEY": "  "}).required


def test_several_keys_are_accepted_so_that_one_can_be_rotated():
    settings = auth.load_auth_settings({"IRAAS_API_KEY": f"{KEY}, {OTHER}"})
    assert settings.keys == (KEY, OTHER)
    assert auth.key_matches(KEY, settings.keys) and auth.key_matches(OTHER, settings.keys)
    assert not auth.key_matches("x" * 24, settings.keys)
    assert not auth.key_matches(KEY[:-1], settings.keys)


@pytest.mark.parametrize(
    ("value", "says"),
    [
        ("short-key", "key 1 of 1 has 9 characters"),
        (f"{KEY},,{OTHER}", "key 2 of 3 is empty"),
        (f"{KEY},", "key 2 of 2 is empty"),
        ("ключ-которыйдлинный-ключ", "key 1 of 1 has a character that is not printable ASCII"),
        ("a key with some spaces", "not printable ASCII (or is a space)"),
    ],
)
def test_a_bad_key_fails_at_start_up_naming_the_variable_but_never_the_key(value, says):
    with pytest.raises(ConfigError, match="IRAAS_API_KEY") as caught:
        auth.load_auth_settings({"IRAAS_API_KEY": value})
    assert says in str(caught.value)
    for key in value.split(","):
        assert not key.strip() or key.strip() not in str(caught.value)


def test_the_keys_never_show_in_a_repr():
    assert KEY not in repr(auth.load_auth_settings({"IRAAS_API_KEY": KEY}))


@pytest.mark.parametrize(("value", "is_open"), [("true", True), ("1", True), ("false", False), ("", False)])
def test_the_course_endpoint_is_closed_unless_opened(value, is_open):
    assert auth.load_auth_settings({"IRAAS_OPEN_COURSE_ENDPOINT": value}).open_course_endpoint is is_open


def test_a_course_endpoint_setting_that_is_not_a_yes_or_no_fails_at_start_up():
    with pytest.raises(ConfigError, match="IRAAS_OPEN_COURSE_ENDPOINT='maybe'"):
        auth.load_auth_settings({"IRAAS_OPEN_COURSE_ENDPOINT": "maybe"})


def test_a_missing_key_is_401_and_a_wrong_one_403():
    settings = auth.AuthSettings(keys=(KEY,))
    with pytest.raises(Unauthorized) as missing:
        auth.check_request(settings, {}, {}, behind_gateway=False)
    with pytest.raises(Forbidden) as wrong:
        auth.check_request(settings, {"x-api-key": OTHER}, {}, behind_gateway=False)
    assert (http_error(missing.value).status, missing.value.code) == (401, "unauthorized")
    assert (http_error(wrong.value).status, wrong.value.code) == (403, "forbidden")
    auth.check_request(settings, {"x-api-key": KEY}, {}, behind_gateway=False)


def test_behind_api_gateway_a_keyed_route_needs_the_key_api_gateway_accepted():
    """On Lambda API Gateway checks the key; a request it let through without one is refused."""
    none = auth.AuthSettings()
    with pytest.raises(Unauthorized, match="x-api-key"):
        auth.check_request(none, {}, {"identity": {"sourceIp": "203.0.113.9"}}, behind_gateway=True)
    auth.check_request(none, {}, {"identity": {"apiKeyId": "abc123"}}, behind_gateway=True)
    auth.check_request(none, {}, {}, behind_gateway=False)  # loopback development: open


def test_the_caller_is_a_short_hash_of_its_key_never_the_key():
    settings = auth.AuthSettings(keys=(KEY, OTHER))
    one = auth.caller_identity(settings, {"x-api-key": KEY}, {})
    assert one == auth.caller_identity(settings, {"x-api-key": KEY}, {"identity": {"apiKeyId": "x"}})  # stable
    assert one != auth.caller_identity(settings, {"x-api-key": OTHER}, {})
    assert KEY not in one and KEY[:8] not in one
    assert len(one) == 17 and one.startswith("k") and int(one[1:], 16) >= 0


def test_behind_api_gateway_the_caller_is_the_key_the_gateway_accepted_and_else_anonymous():
    none = auth.AuthSettings()
    assert auth.caller_identity(none, {}, {"identity": {"apiKeyId": "abc123XYZ"}}) == "gabc123XYZ"
    odd = auth.caller_identity(none, {}, {"identity": {"apiKeyId": "../x"}})
    assert odd.startswith("g") and "/" not in odd and len(odd) == 17
    assert auth.caller_identity(none, {}, {}) == auth.caller_identity(none, {}, {"identity": {}}) == "anonymous"
