"""iraas/local/api_key.py: which hosts count as this machine only, and the key file `iraas up` makes
and keeps when it listens beyond loopback."""

from __future__ import annotations

import stat

import pytest

from iraas.local.api_key import generated_key, is_loopback_host
from iraas.web import auth


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
