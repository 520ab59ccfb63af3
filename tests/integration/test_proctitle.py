"""iraas/proctitle.py in real processes: `ps` (/proc/<pid>/cmdline) shows the title, `top` its first
15 characters (/proc/<pid>/comm), the stack only where the command line leaves room, and
/proc/<pid>/environ stays readable."""

from __future__ import annotations

import subprocess
import sys

import pytest

from iraas.config import REPO_ROOT

ENV = {"IRAAS_MARK": "kept", "PATH": "/usr/bin:/bin", "PYTHONPATH": str(REPO_ROOT)}  # this checkout's iraas
pytestmark = [
    pytest.mark.skipif(not sys.platform.startswith("linux"), reason="reads /proc"),
]


SHOW = """
import os
from iraas.proctitle import set_title
print(set_title("iraas worker local-1", "/srv/stack"))
with open("/proc/self/cmdline", "rb") as f:
    print(f.read().split(b"\\0")[0].decode())
with open("/proc/self/comm") as f:
    print(f.read().strip())
with open("/proc/self/environ", "rb") as f:
    print(" ".join(v.decode() for v in f.read().split(b"\\0") if v.startswith(b"IRAAS_MARK=")))
"""


def test_ps_shows_the_title_and_the_environment_stays_readable() -> None:
    pytest.importorskip("setproctitle")
    padding = "x" * 40  # room on the command line for the whole title
    done = subprocess.run([sys.executable, "-c", SHOW, padding], capture_output=True, text=True, timeout=30,
                          env=ENV)
    assert done.returncode == 0, done.stderr
    ok, cmdline, comm, environ = done.stdout.splitlines()
    assert ok == "True"
    assert cmdline == "iraas worker local-1 (/srv/stack)"
    assert comm == "iraas worker lo"  # what `top` shows: the first 15 characters
    assert environ == "IRAAS_MARK=kept"


def test_a_title_never_outgrows_the_command_line_and_leaves_the_stack_off_first(tmp_path) -> None:
    pytest.importorskip("setproctitle")
    (tmp_path / "t.py").write_text(SHOW.replace('"/srv/stack"', '"/srv" * 40'))
    done = subprocess.run([sys.executable, "t.py"], cwd=tmp_path, capture_output=True, text=True, timeout=30,
                          env=ENV)
    assert done.returncode == 0, done.stderr
    _, cmdline, _, environ = done.stdout.splitlines()
    assert cmdline == "iraas worker local-1"  # `python t.py` has no room for the stack: left off whole
    assert environ == "IRAAS_MARK=kept"
