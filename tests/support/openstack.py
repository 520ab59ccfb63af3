"""What the OpenStack deploy's tests share: an operator's environment and keys, deploy options, a
self-signed certificate, and readers of the rendered user data (iraas/hybrid/, iraas/cli/openstack.py)."""

from __future__ import annotations

import datetime
from pathlib import Path
from typing import Any

import yaml

from iraas.hybrid.plan import DeployOptions

API_KEYS = "k-0123456789abcdef-first,k-0123456789abcdef-second"
# The operator's shell: the deployed stack's resources, the web tier's AWS credentials and API keys.
ENV = {
    "IRAAS_HOME": "/nonexistent/iraas-home",
    "IRAAS_REGION": "eu-west-1",
    "IRAAS_IMAGE_INPUT_BUCKET": "iraas-input",
    "IRAAS_IMAGE_OUTPUT_BUCKET": "iraas-output",
    "IRAAS_REQUEST_QUEUE_URL": "https://sqs.eu-west-1.amazonaws.com/123456789012/iraas-requests",
    "IRAAS_RESPONSE_QUEUE_URL": "https://sqs.eu-west-1.amazonaws.com/123456789012/iraas-responses",
    "IRAAS_MAX_IMAGE_BYTES": "4718592",
    "AWS_ACCESS_KEY_ID": "AKIAWEBTIER",
    "AWS_SECRET_ACCESS_KEY": "web/tier+secret",
    "IRAAS_API_KEY": API_KEYS,
}


def write_public_key(folder: Path) -> Path:
    """The operator's SSH public key, as a file (tests/conftest.py's ``public_key`` fixture)."""
    path = folder / "id.pub"
    path.write_text("ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIOperatorKey operator@lab\n")
    return path


def options(public_key: Path, **changes: Any) -> DeployOptions:
    values: dict[str, Any] = dict(
        cloud="lab", ssh_cidr="203.0.113.0/24", source_url="https://git.example.com/iraas.git",
        public_key_file=public_key,
    )
    return DeployOptions(**{**values, **changes})


def make_certificate(folder: Path, name: str = "iraas.example.com") -> tuple[Path, Path]:
    """A self-signed certificate and its unencrypted key, as an operator's CA would hand them over."""
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    key = ec.generate_private_key(ec.SECP256R1())
    subject = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, name)])
    now = datetime.datetime.now(datetime.UTC)
    cert = (
        x509.CertificateBuilder().subject_name(subject).issuer_name(subject).public_key(key.public_key())
        .serial_number(x509.random_serial_number()).not_valid_before(now).not_valid_after(now + datetime.timedelta(days=30))
        .add_extension(x509.SubjectAlternativeName([x509.DNSName(name)]), critical=False)
        .sign(key, hashes.SHA256())
    )
    cert_path, key_path = folder / f"{name}.crt", folder / f"{name}.key"
    cert_path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_path.write_bytes(key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    ))
    return cert_path, key_path


def files_of(user_data: str) -> dict[str, dict]:
    """The files the user data writes, by path."""
    assert user_data.startswith("#cloud-config\n")
    return {f["path"]: f for f in yaml.safe_load(user_data)["write_files"]}


def unit_of(user_data: str) -> str:
    """The web tier's systemd unit in the user data."""
    return files_of(user_data)["/etc/systemd/system/iraas-web.service"]["content"]
