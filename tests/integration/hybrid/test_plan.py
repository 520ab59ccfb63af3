"""iraas/hybrid/plan.py with an operator's certificate: it is sent over SSH, never in the user data,
and pinned by the fingerprint openssl computes (a process; without openssl, the plan's own)."""

from __future__ import annotations

import shutil
import subprocess

import yaml

from iraas.hybrid.plan import build_plan, certificate_fingerprint
from tests.support.openstack import (
    ENV,
    make_certificate,
    options,
)


def test_the_operators_certificate_is_sent_over_ssh_and_pinned(public_key, tmp_path):
    cert, key = make_certificate(tmp_path)

    plan = build_plan(options(public_key, tls_cert=cert, tls_key=key), ENV)

    sent = {f.path: f.content for f in plan.sent}
    assert sent["/etc/iraas/tls/cert.pem"] == cert.read_text() and sent["/etc/iraas/tls/key.pem"] == key.read_text()
    assert "PRIVATE KEY" not in plan.user_data
    assert not any("self-signed" in step for step in yaml.safe_load(plan.user_data)["runcmd"])
    fingerprint = subprocess.run(
        ["openssl", "x509", "-in", str(cert), "-noout", "-fingerprint", "-sha256"], capture_output=True, text=True
    ).stdout.strip().split("=")[-1] if shutil.which("openssl") else certificate_fingerprint(cert.read_text())
    assert plan.tls_fingerprint == fingerprint
