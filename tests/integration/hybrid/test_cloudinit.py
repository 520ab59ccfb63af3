"""iraas/hybrid/cloudinit.py's files, checked by the tools that will read them: the rendered user data
passes `cloud-init schema`, the web unit `systemd-analyze verify`, and the first-boot script, run,
makes a private key and prints the fingerprint deploy pins, and an API key it keeps.

Each tool is a process; a test skips, saying so, where its tool is not installed (`make test`
installs Debian's cloud-init where it runs as root with apt)."""

from __future__ import annotations

import os
import re
import shutil
import stat
import subprocess

import pytest

from iraas.hybrid.cloudinit import FIRST_BOOT, UNIT
from iraas.hybrid.deploy import read_console
from iraas.hybrid.plan import build_plan, certificate_fingerprint
from tests.support.openstack import (
    ENV,
    make_certificate,
    options,
)


@pytest.fixture(scope="session")
def cloud_init() -> str:
    """Debian's cloud-init (`make install` installs it where apt is available)."""
    path = shutil.which("cloud-init")
    if path is None:
        pytest.skip("cloud-init is not installed and could not be (no root or no apt); `make install` adds it")
    return path


@pytest.mark.parametrize(
    "change",
    [{}, {"aws_credentials": "env"}, {"aws_credentials": "none", "api_key_source": "generate"}, {"tls": True}],
    ids=["default", "aws-in-user-data", "nothing-sent", "operator-certificate"],
)
def test_the_rendered_user_data_passes_cloud_init_schema(cloud_init, public_key, tmp_path, change):
    if change.pop("tls", False):
        change["tls_cert"], change["tls_key"] = make_certificate(tmp_path)
    path = tmp_path / "user-data.yaml"
    path.write_text(build_plan(options(public_key, **change), ENV).user_data)

    checked = subprocess.run([cloud_init, "schema", "--config-file", str(path)], capture_output=True, text=True)

    assert checked.returncode == 0, checked.stdout + checked.stderr
    assert "Valid" in checked.stdout


def test_the_unit_passes_systemd_analyze_verify(tmp_path):
    analyze = shutil.which("systemd-analyze")
    if analyze is None:
        pytest.skip("systemd-analyze is not installed")
    # verify insists that ExecStart's program exists; the venv exists only on the server.
    unit = tmp_path / "iraas-web.service"
    unit.write_text(UNIT.read_text().replace("/opt/iraas/venv/bin/gunicorn", "/bin/true"))

    checked = subprocess.run([analyze, "verify", "--man=no", str(unit)], capture_output=True, text=True)

    complaints = [line for line in (checked.stdout + checked.stderr).splitlines() if str(unit) in line]
    assert checked.returncode == 0 and complaints == [], checked.stderr


@pytest.fixture
def openssl() -> str:
    path = shutil.which("openssl")
    if path is None:
        pytest.skip("openssl is not installed (the server's image has it)")
    return path


def test_first_boot_makes_a_private_key_and_prints_the_fingerprint_deploy_pins(openssl, tmp_path):
    etc, console = tmp_path / "etc", tmp_path / "console"
    env = {**os.environ, "IRAAS_ETC": str(etc), "IRAAS_CONSOLE": str(console)}

    subprocess.run(["sh", str(FIRST_BOOT), "self-signed", "iraas-web"], env=env, check=True)

    cert = (etc / "tls" / "cert.pem").read_text()
    assert stat.S_IMODE((etc / "tls" / "key.pem").stat().st_mode) == 0o600
    assert read_console(f"boot noise\n{console.read_text()}").tls_fingerprint == certificate_fingerprint(cert)
    text = subprocess.run([openssl, "x509", "-noout", "-text"], input=cert, capture_output=True, text=True).stdout
    assert "DNS:iraas-web" in text

    subprocess.run(["sh", str(FIRST_BOOT), "api-key"], env=env, check=True)
    first = (etc / "api.env").read_text()
    assert re.fullmatch(r"IRAAS_API_KEY=[0-9a-f]{64}\n", first)
    assert stat.S_IMODE((etc / "api.env").stat().st_mode) == 0o600
    subprocess.run(["sh", str(FIRST_BOOT), "api-key"], env=env, check=True)
    assert (etc / "api.env").read_text() == first  # a key already there (the operator's) is kept
