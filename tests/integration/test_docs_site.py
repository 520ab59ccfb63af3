"""The documentation site builds strictly with a plain ``mkdocs build``, as a contributor runs it,
and says nothing but its own findings: no theme notice needs an environment variable to be quiet."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from iraas.config import REPO_ROOT

MKDOCS = Path(sys.executable).with_name("mkdocs")


def test_a_plain_strict_build_passes_without_the_mkdocs_2_notice(tmp_path: Path) -> None:
    env = {k: v for k, v in os.environ.items() if k != "NO_MKDOCS_2_WARNING"}
    result = subprocess.run(
        [str(MKDOCS), "build", "--strict", "--site-dir", str(tmp_path / "site")],
        cwd=REPO_ROOT, env=env, capture_output=True, text=True, timeout=120,
    )
    assert result.returncode == 0, result.stderr
    assert (tmp_path / "site" / "index.html").is_file()
    assert "MkDocs 2.0" not in result.stdout + result.stderr
    assert "WARNING" not in result.stderr
