"""The AMI recipe, the systemd unit and the user data agree, and the tools accept them."""

from __future__ import annotations

import re
import shlex
import shutil
import subprocess
import tomllib
from pathlib import Path

import pytest

from iraas.images.settings import load_image_settings
from iraas.local.template import load_template

REPO_ROOT = Path(__file__).resolve().parents[3]
AMI = REPO_ROOT / "worker_ami"
UNIT = AMI / "iraas-worker.service"


def unit_value(key: str) -> str:
    [line] = [x for x in UNIT.read_text().splitlines() if x.startswith(f"{key}=")]
    return line.split("=", 1)[1]


def user_data() -> str:
    launch = load_template(REPO_ROOT / "template.yaml")["Resources"]["WorkerLaunchTemplate"]
    return launch["Properties"]["LaunchTemplateData"]["UserData"]["Fn::Base64"]["Fn::Sub"]


def test_the_unit_runs_the_same_entry_point_as_the_local_workers():
    command = shlex.split(unit_value("ExecStart"))
    assert Path(command[0]).name == "iraas" and command[1:] == ["worker"]
    scripts = tomllib.loads((REPO_ROOT / "pyproject.toml").read_text())["project"]["scripts"]
    assert scripts["iraas"] == "iraas.cli.main:main"  # what `python -m iraas.cli worker` runs locally
    assert unit_value("Restart") == "on-failure"
    assert unit_value("EnvironmentFile") == "/etc/iraas/worker.env"


def test_the_user_data_writes_every_setting_the_worker_needs_and_starts_the_unit():
    script = user_data()
    body = re.search(r"<<ENV\n(.*?)\nENV", script, re.S).group(1)
    names = [line.split("=", 1)[0] for line in body.splitlines()]
    env = {name: "1048576" if name == "IRAAS_MAX_IMAGE_BYTES" else "x" for name in names}
    env["IRAAS_HOME"] = "/nonexistent"
    settings = load_image_settings(env)  # raises if the worker would be missing a resource
    assert settings.request_queue_url == "x"
    assert "IRAAS_WORKER_ID" in names  # heartbeats name the instance the scaler may terminate
    assert "systemctl enable --now iraas-worker.service" in script
    assert "http://169.254.169.254/latest/api/token" in script  # IMDSv2, as the template requires


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
