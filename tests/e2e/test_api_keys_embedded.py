"""`iraas up` reachable beyond this machine never runs open: with no IRAAS_API_KEY it makes a key,
keeps it where only its user can read it, and the CLI sends the key from the environment."""

from __future__ import annotations

import stat
import subprocess
import sys
from pathlib import Path
from urllib.parse import urlsplit

import pytest
import requests

from harness.embedded import RunningStack, running_stack
from iraas.config import REPO_ROOT

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def exposed(tmp_path_factory, model_path) -> RunningStack:
    """`iraas up --host 0.0.0.0` with no key of the user's (a blank IRAAS_API_KEY is none)."""
    with running_stack(tmp_path_factory.mktemp("iraas-exposed"), {"IRAAS_API_KEY": ""}, host="0.0.0.0") as running:
        yield running


def key_of(stack: RunningStack) -> str:
    return (stack.home / "api-key").read_text().strip()


def iraas(stack: RunningStack, key: str, *args: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "iraas.cli", *args], env={**stack.env, "IRAAS_API_KEY": key}, cwd=REPO_ROOT,
        capture_output=True, text=True, timeout=120,
    )


def test_listening_beyond_loopback_without_a_key_makes_one_instead_of_running_open(exposed: RunningStack):
    key_file = exposed.home / "api-key"
    assert stat.S_IMODE(key_file.stat().st_mode) == 0o600
    said = [line for line in exposed.startup if str(key_file) in line]
    assert len(said) == 1 and "IRAAS_API_KEY is not set" in said[0] and "made now" in said[0]
    key = key_of(exposed)
    assert key not in "".join(exposed.startup)  # the file has it; the terminal never shows it

    missing = requests.get(exposed.url + "/v1/stats", timeout=10)
    assert missing.status_code == 401 and missing.json()["error"]["code"] == "unauthorized"
    wrong = requests.get(exposed.url + "/v1/stats", headers={"x-api-key": "not-the-key-0123456789"}, timeout=10)
    assert wrong.status_code == 403 and wrong.json()["error"]["code"] == "forbidden"
    assert requests.get(exposed.url + "/v1/stats", headers={"x-api-key": key}, timeout=10).status_code == 200
    assert requests.get(exposed.url + "/v1/healthz", timeout=10).status_code == 200
    assert requests.get(exposed.url + "/", timeout=10).status_code == 200  # the page; its calls need the key


def test_the_aws_endpoint_listens_on_loopback_only(exposed: RunningStack):
    """moto has no authentication: reachable from the network, it would bypass the key."""
    assert urlsplit(exposed.stack["endpoint_url"]).hostname == "127.0.0.1"


def test_status_sends_the_key_from_the_environment(exposed: RunningStack):
    status = iraas(exposed, key_of(exposed), "status", "--url", exposed.url)
    assert status.returncode == 0, status.stderr
    assert "requests     0 waiting" in status.stdout and "1 running" in status.stdout


def test_classify_sends_the_key_from_the_environment(exposed: RunningStack, photo):
    classified = iraas(exposed, key_of(exposed), "classify", "--remote", exposed.url, str(photo.path))
    assert classified.returncode == 0, classified.stderr
    assert f"{photo.path}\t{photo.label}" in classified.stdout


def test_without_the_right_key_status_says_so_in_one_line(exposed: RunningStack):
    refused = iraas(exposed, "", "status", "--url", exposed.url)
    assert (refused.returncode, refused.stdout) == (2, "")
    assert refused.stderr == f"iraas status: {exposed.url} needs an API key: set IRAAS_API_KEY (the key is sent as x-api-key)\n"
    wrong = iraas(exposed, "not-the-key-0123456789", "status", "--url", exposed.url)
    assert wrong.stderr == f"iraas status: {exposed.url} refused the API key in IRAAS_API_KEY\n"


def test_without_the_key_classify_says_so_once_not_once_per_file(exposed: RunningStack, photo):
    refused = iraas(exposed, "", "classify", "--remote", exposed.url, str(photo.path), str(photo.path))
    assert refused.returncode == 2
    assert refused.stderr.splitlines() == [
        f"iraas classify: {exposed.url} needs an API key: set IRAAS_API_KEY (the key is sent as x-api-key): "
        "this route needs an API key in the x-api-key header"
    ]


def test_the_key_is_in_no_log(exposed: RunningStack):
    key = key_of(exposed)
    logs = [path for path in Path(exposed.home / "logs").iterdir() if path.is_file()]
    assert logs and not [path.name for path in logs if key in path.read_text(errors="replace")]
