"""The packaged template, built once per test session for every test that reads it."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path
from typing import Any

import pytest

from iraas.config import REPO_ROOT

SAM_PYTHON = REPO_ROOT / ".venv-sam" / "bin" / "python"


@pytest.fixture(scope="session")
def packaged_template(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """`make package`'s sam.yaml (chalice's template merged with template.yaml, finished, linted)."""
    out = tmp_path_factory.mktemp("package")
    subprocess.run(["make", "--no-print-directory", "package", f"PACKAGE_DIR={out}"], cwd=REPO_ROOT,
                   check=True, capture_output=True)
    return out / "sam.yaml"


@pytest.fixture(scope="session")
def expanded_template(packaged_template: Path) -> dict[str, Any]:
    """The package as SAM's translator expands it for `sam deploy` (a fresh copy per call: json)."""
    if not SAM_PYTHON.exists():
        pytest.skip("aws-sam-cli is not installed in .venv-sam (make test installs it)")
    target = packaged_template.with_name("expanded.json")
    subprocess.run(
        [str(SAM_PYTHON), str(REPO_ROOT / "tests" / "support" / "sam_expand.py"), str(packaged_template), str(target)],
        check=True, capture_output=True,
    )
    return json.loads(target.read_text())
