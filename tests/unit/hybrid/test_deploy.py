"""iraas/hybrid/deploy.py: how deploy learns to trust the new server, from its console log: the host
keys and the certificate's fingerprint, and no pin without a fingerprint. (HTTPS that succeeds only
against the pinned certificate, and deploy and teardown against a recorded cloud:
tests/integration/hybrid/test_deploy.py.)"""

from __future__ import annotations

import pytest

from iraas.hybrid.deploy import pinned_session, read_console

ED25519 = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIHostKeyOfTheNewServer"
ECDSA = "ecdsa-sha2-nistp256 AAAAE2VjZHNhLXNoYTItbmlzdHAyNTYAAAAIbmlzdHAyNTYAAABBBHostKey="
FINGERPRINT = ":".join(["5F"] * 32)
CONSOLE = f"""[    3.1] cloud-init[512]: Cloud-init v. 22.4.2 running 'modules:config'
iraas-tls-sha256: {FINGERPRINT}
ci-info: no authorized SSH keys fingerprints found for user debian.
-----BEGIN SSH HOST KEY FINGERPRINTS-----
256 SHA256:3p5Kx1m0Zq root@iraas-web (ECDSA)
256 SHA256:Q0Gm2dXk1c root@iraas-web (ED25519)
-----END SSH HOST KEY FINGERPRINTS-----
-----BEGIN SSH HOST KEY KEYS-----
{ECDSA} root@iraas-web
{ED25519} root@iraas-web
-----END SSH HOST KEY KEYS-----
[   61.0] cloud-init[640]: Cloud-init v. 22.4.2 finished
"""


def test_the_console_log_gives_the_host_keys_and_the_certificate_fingerprint():
    facts = read_console(CONSOLE)

    assert facts.host_keys == (ECDSA, ED25519)  # no comments, no fingerprint lines
    assert facts.tls_fingerprint == FINGERPRINT


def test_a_console_log_still_booting_gives_nothing():
    facts = read_console(CONSOLE.split("-----BEGIN SSH HOST KEY KEYS")[0].replace("iraas-tls-sha256", "booting"))

    assert facts.host_keys == () and facts.tls_fingerprint is None


def test_the_first_host_keys_count_not_a_later_block():
    # First boot prints them before anything else on the server runs; a later block is no better evidence.
    later = CONSOLE.replace(ED25519, "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAILaterKey")

    assert read_console(CONSOLE + later).host_keys == (ECDSA, ED25519)


def test_an_empty_fingerprint_is_no_pin():
    with pytest.raises(ValueError, match="not a SHA-256 fingerprint"):
        pinned_session("")
