"""locks/audit.py (make audit) as a user runs it, where pip-audit cannot reach its vulnerability data: one
line saying there is no result, exit 2, and never "no known vulnerabilities". A process with pip-audit
itself (make audit's venv, which make test installs), pointed at a proxy that refuses every connection:
offline, and the same answer every time."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
from pathlib import Path

import pytest

REPO_ROOT = Path(__file__).resolve().parents[3]
PIP_AUDIT = REPO_ROOT / ".venv-audit" / "bin" / "pip-audit"


@pytest.mark.skipif(not PIP_AUDIT.exists(), reason="pip-audit is not installed (make test and make audit install it)")
def test_an_audit_that_cannot_reach_its_vulnerability_data_says_so_and_fails(tmp_path):
    # A port bound but not listening: every connection to it is refused, and nothing else can take it meanwhile.
    with socket.socket() as closed:
        closed.bind(("127.0.0.1", 0))
        proxy = f"http://127.0.0.1:{closed.getsockname()[1]}"
        env = {k: v for k, v in os.environ.items() if k.lower() not in ("no_proxy", "all_proxy")}
        env.update(HTTPS_PROXY=proxy, https_proxy=proxy, HTTP_PROXY=proxy, http_proxy=proxy)
        result = subprocess.run(
            [sys.executable, str(REPO_ROOT / "locks" / "audit.py"), "--pip-audit", str(PIP_AUDIT),
             str(REPO_ROOT / "locks" / "callback-function.txt"), "--", "--cache-dir", str(tmp_path / "cache")],
            capture_output=True, text=True, env=env, timeout=120,
        )

    assert result.returncode == 2
    [line] = result.stderr.splitlines()
    assert line.startswith("audit: NO RESULT: callback-function.txt: pip-audit could not reach its vulnerability data (")
    assert "Connection refused" in line
    assert "no known vulnerabilities" not in (result.stdout + result.stderr).lower()
