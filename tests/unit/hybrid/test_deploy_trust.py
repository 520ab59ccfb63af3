"""How deploy trusts the new server: host keys and the certificate's fingerprint from the console log,
then HTTPS that succeeds only against that certificate."""

from __future__ import annotations

import datetime
import http.server
import ssl
import threading
import warnings
from collections.abc import Iterator
from pathlib import Path

import pytest
import requests

from iraas.hybrid.deploy import pinned_session, read_console
from iraas.hybrid.plan import certificate_fingerprint

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


@pytest.fixture(scope="module")
def https_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[str, str]]:
    """A real HTTPS server with a self-signed certificate; yields its URL and the certificate's SHA-256."""
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    folder = Path(tmp_path_factory.mktemp("tls"))
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "iraas-web")])
    now = datetime.datetime.now(datetime.UTC)
    cert = (
        x509.CertificateBuilder().subject_name(name).issuer_name(name).public_key(key.public_key())
        .serial_number(x509.random_serial_number()).not_valid_before(now).not_valid_after(now + datetime.timedelta(days=1))
        .sign(key, hashes.SHA256())
    )
    (folder / "cert.pem").write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    (folder / "key.pem").write_bytes(key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    ))

    class Healthz(http.server.BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            self.send_response(200)
            self.send_header("Content-Length", "2")
            self.end_headers()
            self.wfile.write(b"ok")

        def log_message(self, *args: object) -> None:
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Healthz)
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(folder / "cert.pem", folder / "key.pem")
    server.socket = context.wrap_socket(server.socket, server_side=True)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        yield f"https://127.0.0.1:{server.server_port}/v1/healthz", certificate_fingerprint((folder / "cert.pem").read_text())
    finally:
        server.shutdown()
        server.server_close()


def test_the_health_check_trusts_the_pinned_certificate_and_warns_about_nothing(https_server):
    url, fingerprint = https_server
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # an InsecureRequestWarning would mean nothing was checked

        assert pinned_session(fingerprint).get(url, timeout=5, verify=False).status_code == 200


def test_the_health_check_refuses_any_other_certificate(https_server):
    url, _ = https_server

    with pytest.raises(requests.exceptions.SSLError, match="[Ff]ingerprints did not match"):
        pinned_session(":".join(["00"] * 32)).get(url, timeout=5, verify=False)


def test_an_empty_fingerprint_is_no_pin():
    with pytest.raises(ValueError, match="not a SHA-256 fingerprint"):
        pinned_session("")
