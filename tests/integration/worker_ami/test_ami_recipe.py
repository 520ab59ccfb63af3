"""worker_ami/ (the AMI recipe, not a module) as its tools read it: systemd accepts the unit, packer
validates the recipe against real inputs, and the install script is valid bash. Each is a process;
a test skips, saying so, where its tool is not installed."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest

REPO_ROOT = Path(__file__).resolve().parents[3]
AMI = REPO_ROOT / "worker_ami"
UNIT = AMI / "iraas-worker.service"


@pytest.mark.skipif(shutil.which("systemd-analyze") is None, reason="systemd-analyze is not installed")
def test_systemd_accepts_the_unit(tmp_path):
    # Verify inside a scratch root that has the unit, a stand-in executable and systemd's own units.
    (tmp_path / "etc/systemd/system").mkdir(parents=True)
    shutil.copy(UNIT, tmp_path / "etc/systemd/system/iraas-worker.service")
    executable = tmp_path / "opt/iraas/venv/bin/iraas"
    executable.parent.mkdir(parents=True)
    executable.write_text("#!/bin/sh\n")
    executable.chmod(0o755)
    system_units = next(p for p in (Path("/usr/lib/systemd/system"), Path("/lib/systemd/system")) if p.is_dir())
    shutil.copytree(system_units, tmp_path / "usr/lib/systemd/system", symlinks=True)

    result = subprocess.run(
        ["systemd-analyze", "verify", f"--root={tmp_path}", "/etc/systemd/system/iraas-worker.service"],
        capture_output=True,
        text=True,
    )

    assert result.returncode == 0 and result.stderr == "", result.stderr


@pytest.mark.skipif(shutil.which("packer") is None, reason="packer is not installed (make test installs it)")
def test_packer_validates_the_recipe_against_real_inputs(tmp_path):
    source = tmp_path / "iraas-src.tar.gz"
    source.write_bytes(b"")
    models = tmp_path / "models"
    models.mkdir()
    result = subprocess.run(
        ["packer", "validate", "-var", f"source_tree={source}", "-var", f"model_dir={models}/",
         str(AMI / "worker.pkr.hcl")],
        cwd=REPO_ROOT,
        capture_output=True,
        text=True,
    )

    assert result.returncode == 0, result.stdout + result.stderr


def test_the_install_script_is_valid_bash():
    subprocess.run(["bash", "-n", str(AMI / "install.sh")], check=True)
