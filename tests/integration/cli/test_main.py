"""The `iraas` command line (iraas/cli/main.py) where what it needs is not there: no service at a URL,
a stack that is gone, a port in use. Each is one line on stderr and a non-zero exit, never a
traceback. These open sockets (the rest of the command line: tests/unit/cli/test_main.py)."""

from __future__ import annotations

import json
import socket
from pathlib import Path

import pytest

from harness.embedded import free_port
from iraas.config import RESOURCE_ENV
from tests.support.cli import run


@pytest.fixture
def no_stack(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Path:
    """No IRAAS_* resource variables and an empty IRAAS_HOME: nothing is configured."""
    for var in [*RESOURCE_ENV.values(), "IRAAS_ENDPOINT_URL", "IRAAS_DEBUG"]:
        monkeypatch.delenv(var, raising=False)
    monkeypatch.setenv("IRAAS_HOME", str(tmp_path / "home"))
    return tmp_path / "home"


def test_classify_remote_with_no_service_there_is_one_line_and_leaves_no_output_file(capsys, tmp_path) -> None:
    (tmp_path / "cat.jpg").write_bytes(b"x")
    url = f"http://127.0.0.1:{free_port()}"
    results = tmp_path / "results.csv"
    code, out, err = run(capsys, "classify", "--remote", url, str(tmp_path / "cat.jpg"), "-o", str(results))
    assert code == 2
    assert out == ""
    (line,) = err.splitlines()
    assert line.startswith(f"iraas classify: no IRaaS service at {url}: ") and line.endswith("is `iraas up` running?")
    assert not results.exists()


def test_status_of_a_stack_that_is_gone_says_so_in_one_line(capsys, no_stack: Path) -> None:
    endpoint = f"http://127.0.0.1:{free_port()}"
    resources = {
        "ImageInputBucket": "in", "ImageOutputBucket": "out",
        "RequestQueue": f"{endpoint}/123456789012/requests", "ResponseQueue": f"{endpoint}/123456789012/responses",
    }
    no_stack.mkdir()
    (no_stack / "stack.json").write_text(json.dumps({"endpoint_url": endpoint, "region": "us-east-1", "resources": resources}))
    code, _, err = run(capsys, "status")
    assert code == 2
    (line,) = err.splitlines()
    assert line.startswith(f"iraas status: the stack in {no_stack / 'stack.json'} does not answer at {endpoint}")
    assert line.endswith("is `iraas up` still running?")


def test_status_url_with_no_service_there_is_one_line(capsys) -> None:
    url = f"http://127.0.0.1:{free_port()}"
    code, _, err = run(capsys, "status", "--url", url)
    assert code == 2
    (line,) = err.splitlines()
    assert line.startswith(f"iraas status: no IRaaS service at {url}: ")


def test_up_on_a_port_in_use_is_one_line_and_leaves_the_running_stack_alone(capsys, tmp_path) -> None:
    import signal

    # `iraas up` installs its own signal handlers; pytest's are put back afterwards.
    previous = {s: signal.getsignal(s) for s in (signal.SIGINT, signal.SIGTERM)}
    home = tmp_path / "home"
    home.mkdir()
    (home / "stack.json").write_text("{}")  # the stack that holds the port
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]
        try:
            code, out, err = run(capsys, "up", "--port", str(port), "--home", str(home))
        finally:
            for signum, handler in previous.items():
                signal.signal(signum, handler)
    assert code == 1
    assert out == ""
    assert err == f"iraas up: port {port} on 127.0.0.1 is in use; choose another with --port\n"
    assert (home / "stack.json").read_text() == "{}"
