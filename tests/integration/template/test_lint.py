"""template.yaml (not a module: the stack itself) passes `sam validate --lint`, run from aws-sam-cli's
own venv (a process; skipped where `make test` has not installed it)."""

from __future__ import annotations

from pathlib import Path

import pytest

TEMPLATE_PATH = Path(__file__).resolve().parents[3] / "template.yaml"
SAM = TEMPLATE_PATH.parent / ".venv-sam" / "bin" / "sam"


@pytest.mark.skipif(not SAM.exists(), reason="aws-sam-cli is not installed in .venv-sam (make test installs it)")
def test_sam_validate_lint_passes(tmp_path: Path) -> None:
    import subprocess

    result = subprocess.run(
        [str(SAM), "validate", "--lint", "--region", "us-east-1", "--template-file", str(TEMPLATE_PATH)],
        capture_output=True,
        text=True,
        env={"SAM_CLI_TELEMETRY": "0", "PATH": "/usr/bin:/bin", "HOME": str(tmp_path)},
        timeout=120,
    )
    assert result.returncode == 0, result.stdout + result.stderr
