"""API keys (iraas/web/auth.py): what the web tier accepts, how a bad setting is told, and the key file
`iraas up` keeps when it listens beyond loopback."""

from __future__ import annotations

import stat

import pytest

from harness.embedded import free_port
from iraas.cli import api_key
from iraas.cli import main as cli
from iraas.errors import ConfigError
from iraas.local.api_key import generated_key, is_loopback_host
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


def test_clients_send_the_first_key_of_the_list():
    assert api_key.client_headers({"IRAAS_API_KEY": f"{KEY},{OTHER}"}) == {"x-api-key": KEY}
    assert api_key.client_headers({}) == {}


@pytest.mark.parametrize(
    ("host", "loopback"),
    [("127.0.0.1", True), ("127.0.0.2", True), ("localhost", True), ("::1", True), ("[::1]", True),
     ("0.0.0.0", False), ("::", False), ("192.168.1.10", False), ("example.org", False)],
)
def test_only_loopback_addresses_count_as_this_machine_only(host, loopback):
    assert is_loopback_host(host) is loopback


def test_the_generated_key_is_made_once_readable_by_its_owner_only_and_kept(tmp_path):
    key, path, made = generated_key(tmp_path)
    assert made and path == tmp_path / "api-key"
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert auth.parse_keys(key) == (key,)
    path.chmod(0o644)
    again, _, made_again = generated_key(tmp_path)
    assert (again, made_again) == (key, False)
    assert stat.S_IMODE(path.stat().st_mode) == 0o600


def test_up_with_a_bad_key_says_so_in_one_line_before_starting_anything(capsys, tmp_path, monkeypatch):
    import signal

    monkeypatch.setenv("IRAAS_API_KEY", "too-short")
    previous = {s: signal.getsignal(s) for s in (signal.SIGINT, signal.SIGTERM)}
    try:
        code = cli.main(["up", "--port", str(free_port()), "--home", str(tmp_path)])
    finally:
        for signum, handler in previous.items():
            signal.signal(signum, handler)
    out, err = capsys.readouterr()
    assert code == 2
    assert err == "iraas up: configuration error: IRAAS_API_KEY: key 1 of 1 has 9 characters; a key has 16 to 256 " \
        "(`python -c 'import secrets; print(secrets.token_urlsafe(32))'` makes one)\n"
    assert not (tmp_path / "stack.json").exists()
