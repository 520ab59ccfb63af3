"""The deploy plan and its cloud-init user data, worked out with no network call."""

from __future__ import annotations

import datetime
import os
import re
import shutil
import socket
import stat
import subprocess
from pathlib import Path

import pytest
import yaml

from iraas.cli import openstack as command
from iraas.cli.main import main
from iraas.hybrid.cloudinit import FIRST_BOOT, FIRST_BOOT_PATH, UNIT, UserData, UserDataError, render_user_data
from iraas.hybrid.deploy import read_console
from iraas.hybrid.plan import (
    API_KEY_SOURCES,
    AWS_CREDENTIAL_MODES,
    DeployOptions,
    PlanError,
    build_plan,
    certificate_fingerprint,
)

API_KEYS = "k-0123456789abcdef-first,k-0123456789abcdef-second"
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
SECRET_VALUES = ("AKIAWEBTIER", "web/tier+secret", "k-0123456789abcdef")


@pytest.fixture
def public_key(tmp_path: Path) -> Path:
    path = tmp_path / "id.pub"
    path.write_text("ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIOperatorKey operator@lab\n")
    return path


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


def options(public_key: Path, **changes) -> DeployOptions:
    values = dict(
        cloud="lab", ssh_cidr="203.0.113.0/24", source_url="https://git.example.com/iraas.git",
        public_key_file=public_key,
    )
    return DeployOptions(**{**values, **changes})


def files_of(user_data: str) -> dict[str, dict]:
    assert user_data.startswith("#cloud-config\n")
    return {f["path"]: f for f in yaml.safe_load(user_data)["write_files"]}


def unit_of(user_data: str) -> str:
    return files_of(user_data)["/etc/systemd/system/iraas-web.service"]["content"]


def unit_lines(user_data: str, key: str) -> list[str]:
    return [line.split("=", 1)[1] for line in unit_of(user_data).splitlines() if line.startswith(f"{key}=")]


def test_the_server_gets_the_same_settings_contract_and_its_own_bind_address(public_key):
    plan = build_plan(options(public_key, port=8443), ENV)

    web_env = dict(line.split("=", 1) for line in files_of(plan.user_data)["/etc/iraas/web.env"]["content"].splitlines())
    assert web_env == {
        "IRAAS_REGION": "eu-west-1",
        "IRAAS_IMAGE_INPUT_BUCKET": "iraas-input",
        "IRAAS_IMAGE_OUTPUT_BUCKET": "iraas-output",
        "IRAAS_REQUEST_QUEUE_URL": ENV["IRAAS_REQUEST_QUEUE_URL"],
        "IRAAS_RESPONSE_QUEUE_URL": ENV["IRAAS_RESPONSE_QUEUE_URL"],
        "IRAAS_MAX_IMAGE_BYTES": "4718592",
        "IRAAS_REPLY_QUEUE_PREFIX": "iraas-reply-",
        "IRAAS_MODEL": "lite0-int8",
        "IRAAS_HOME": "/var/lib/iraas",
        "IRAAS_WEB_BIND": "0.0.0.0:8443",
    }
    assert [(r.port, r.cidr, r.purpose) for r in plan.rules] == [(8443, "0.0.0.0/0", "HTTPS"), (22, "203.0.113.0/24", "SSH")]


# Finding: the user data carried the operator's AWS keys by default, readable from the metadata service.
def test_by_default_no_secret_is_in_the_user_data_and_deploy_sends_them_over_ssh(public_key):
    plan = build_plan(options(public_key), ENV)

    for value in SECRET_VALUES:
        assert value not in plan.user_data
    # No assignment of either, in any spelling (first-boot.sh's printf format is no value).
    assert not re.search(r"(?i)aws_secret_access_key\s*[=:]|IRAAS_API_KEY=(?!%s)", plan.user_data)
    assert not {"/etc/iraas/aws.env", "/etc/iraas/api.env"} & files_of(plan.user_data).keys()
    assert {f.path: f.content for f in plan.sent} == {
        "/etc/iraas/api.env": f"IRAAS_API_KEY={API_KEYS}\n",
        "/etc/iraas/aws.env": "AWS_ACCESS_KEY_ID=AKIAWEBTIER\nAWS_SECRET_ACCESS_KEY=web/tier+secret\n",
    }
    assert "web/tier+secret" not in repr(plan.sent)  # a traceback or log line never shows them


def test_none_leaves_the_credentials_to_the_operator(public_key):
    plan = build_plan(options(public_key, aws_credentials="none"), ENV)

    assert "AKIA" not in plan.user_data and "/etc/iraas/aws.env" not in [f.path for f in plan.sent]
    assert "-/etc/iraas/aws.env" in unit_lines(plan.user_data, "EnvironmentFile")  # the operator's own file, when added


def test_credentials_in_the_user_data_only_when_asked_and_then_the_cli_warns(public_key, monkeypatch, capsys):
    plan = build_plan(options(public_key, aws_credentials="env"), ENV)
    aws_env = files_of(plan.user_data)["/etc/iraas/aws.env"]
    assert aws_env["content"] == "AWS_ACCESS_KEY_ID=AKIAWEBTIER\nAWS_SECRET_ACCESS_KEY=web/tier+secret\n"
    assert aws_env["permissions"] == "0600"
    assert API_KEYS not in plan.user_data  # the API key never, whatever the AWS choice

    for name, value in ENV.items():
        monkeypatch.setenv(name, value)
    code = main([*DEPLOY, "--public-key", str(public_key), "--aws-credentials", "env", "--dry-run"])

    out, err = capsys.readouterr()
    assert code == 0
    [warning] = err.splitlines()
    assert warning.startswith("iraas openstack deploy: WARNING: --aws-credentials env puts the AWS secret key in the user data")
    assert "metadata service" in warning
    assert "AWS_SECRET_ACCESS_KEY=<redacted>" in out and "web/tier+secret" not in out


# Finding: the metadata service was open to the web service.
def test_the_web_service_cannot_reach_the_metadata_service(public_key):
    user_data = build_plan(options(public_key), ENV).user_data

    denied = " ".join(unit_lines(user_data, "IPAddressDeny")).split()
    assert "169.254.169.254" in denied and "fe80::a9fe:a9fe" in denied
    assert "AWS_EC2_METADATA_DISABLED=true" in unit_lines(user_data, "Environment")
    assert unit_of(user_data) == UNIT.read_text()  # the unit the tests read is the one the server gets


# Finding: HTTP without TLS, open to the world.
def test_https_with_a_self_signed_certificate_made_on_first_boot_by_default(public_key):
    plan = build_plan(options(public_key), ENV)
    config = yaml.safe_load(plan.user_data)

    [start] = unit_lines(plan.user_data, "ExecStart")
    assert "--certfile %d/tls-cert --keyfile %d/tls-key" in start
    assert unit_lines(plan.user_data, "LoadCredential") == [
        "tls-cert:/etc/iraas/tls/cert.pem", "tls-key:/etc/iraas/tls/key.pem"
    ]
    assert config["runcmd"][0] == [FIRST_BOOT_PATH, "self-signed", "iraas-web"]
    assert files_of(plan.user_data)[FIRST_BOOT_PATH]["content"] == FIRST_BOOT.read_text()
    assert config["ssh"] == {"emit_keys_to_console": True}  # deploy checks the host key against them
    assert plan.tls_fingerprint is None  # read from the console log, then pinned


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


@pytest.mark.parametrize(
    ("which", "message"),
    [
        ("cert only", "go together"),
        ("another key", "do not load as a certificate and its key"),
        ("encrypted", "is encrypted; gunicorn needs the key without a passphrase"),
    ],
)
def test_a_certificate_without_its_own_usable_key_is_refused(public_key, tmp_path, which, message):
    from cryptography.hazmat.primitives import serialization

    cert, key = make_certificate(tmp_path, "a.example.com")
    _, other_key = make_certificate(tmp_path, "b.example.com")
    if which == "encrypted":
        loaded = serialization.load_pem_private_key(key.read_bytes(), None)
        key.write_bytes(loaded.private_bytes(
            serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.BestAvailableEncryption(b"pw")
        ))
    key = {"cert only": None, "another key": other_key, "encrypted": key}[which]

    with pytest.raises(PlanError, match=message):
        build_plan(options(public_key, tls_cert=cert, tls_key=key), ENV)


# Finding: the security group opened the plain HTTP port to the world.
def test_the_security_group_opens_https_and_ssh_and_no_plain_http(public_key):
    plan = build_plan(options(public_key), ENV)

    assert [(r.port, r.cidr) for r in plan.rules] == [(443, "0.0.0.0/0"), (22, "203.0.113.0/24")]
    assert "IRAAS_WEB_BIND=0.0.0.0:443" in files_of(plan.user_data)["/etc/iraas/web.env"]["content"]


DEPLOY = [
    "openstack", "deploy", "--cloud", "lab", "--ssh-cidr", "203.0.113.0/24",
    "--source-url", "https://git.example.com/iraas.git",
]


# Finding (with the app's API key check): deploy must not start a server that answers anyone.
def test_deploy_refuses_an_open_server_in_one_line_when_no_key_source(public_key, monkeypatch, capsys):
    for name, value in ENV.items():
        monkeypatch.setenv(name, value)
    monkeypatch.delenv("IRAAS_API_KEY")

    code = main([*DEPLOY, "--public-key", str(public_key), "--dry-run"])

    out, err = capsys.readouterr()
    assert code == 2 and out == ""
    [line] = err.splitlines()
    assert line.startswith("iraas openstack deploy: no API key for the server: export IRAAS_API_KEY=")
    assert "--api-key-source generate" in line


def test_a_guessable_api_key_is_refused(public_key):
    with pytest.raises(PlanError, match="IRAAS_API_KEY: key 2 of 2 has 5 characters") as refused:
        build_plan(options(public_key), {**ENV, "IRAAS_API_KEY": "k-0123456789abcdef-first,short"})
    assert "short" not in str(refused.value)  # named by position, never by value


def test_a_generated_api_key_is_made_on_the_server_and_never_sent(public_key):
    plan = build_plan(options(public_key, api_key_source="generate"), {**ENV, "IRAAS_API_KEY": ""})

    assert [FIRST_BOOT_PATH, "api-key"] in yaml.safe_load(plan.user_data)["runcmd"]
    assert "/etc/iraas/api.env" not in [f.path for f in plan.sent]


def test_an_api_key_among_the_settings_never_reaches_web_env(public_key, monkeypatch):
    # Should the settings ever carry the key, web.env (in the user data) still must not.
    from iraas.hybrid import plan as plan_module

    real = plan_module.settings_env
    monkeypatch.setattr(plan_module, "settings_env", lambda s: {**real(s), "IRAAS_API_KEY": API_KEYS})

    assert API_KEYS not in build_plan(options(public_key), ENV).user_data


def test_the_unit_never_starts_without_an_api_key_and_a_certificate(public_key):
    user_data = build_plan(options(public_key), ENV).user_data

    assert unit_lines(user_data, "ConditionPathExists") == [
        "/etc/iraas/api.env", "/etc/iraas/tls/cert.pem", "/etc/iraas/tls/key.pem"
    ]
    assert "/etc/iraas/api.env" in unit_lines(user_data, "EnvironmentFile")  # required, no "-"
    [guard] = unit_lines(user_data, "ExecStartPre")
    assert 'test -n "$$IRAAS_API_KEY"' in guard and "exit 1" in guard


@pytest.mark.parametrize(
    ("change", "env_change", "message"),
    [
        ({"ssh_cidr": "everyone"}, {}, "--ssh-cidr 'everyone' is not a CIDR"),
        ({"https_cidr": "world"}, {}, "--https-cidr 'world' is not a CIDR"),
        ({}, {"AWS_SECRET_ACCESS_KEY": ""}, "--aws-credentials ssh needs AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY"),
        ({}, {"IRAAS_ENDPOINT_URL": "http://127.0.0.1:5000"}, "a local one"),
        ({}, {"IRAAS_REQUEST_QUEUE_URL": ""}, "IRAAS_REQUEST_QUEUE_URL is not set"),
        ({"port": 0}, {}, "not a TCP port"),
        ({"name": "web/evil"}, {}, "--name 'web/evil' must be letters, digits and '-'"),
    ],
)
def test_a_plan_that_cannot_work_is_refused_with_the_reason(public_key, change, env_change, message):
    with pytest.raises(PlanError, match=re.escape(message)):
        build_plan(options(public_key, **change), {**ENV, **env_change})


def test_a_value_that_could_escape_its_line_is_refused():
    with pytest.raises(UserDataError, match="IRAAS_REGION"):
        render_user_data(UserData("https://git.example.com/x.git", "main", {"IRAAS_REGION": "eu\nEVIL=1"}))
    with pytest.raises(UserDataError, match="source ref"):
        render_user_data(UserData("https://git.example.com/x.git", "--upload-pack=evil", {}))


def test_the_cli_offers_the_plans_choices():
    # command.py repeats them so that building the parser needs no pyyaml.
    assert command.AWS_CREDENTIAL_MODES == AWS_CREDENTIAL_MODES and command.API_KEY_SOURCES == API_KEY_SOURCES


@pytest.fixture
def no_network(monkeypatch: pytest.MonkeyPatch) -> None:
    def refuse(*args, **kwargs):
        raise AssertionError(f"a network call during --dry-run: {args}")

    monkeypatch.setattr(socket.socket, "connect", refuse)
    monkeypatch.setattr(socket, "create_connection", refuse)
    monkeypatch.setattr(socket, "getaddrinfo", refuse)


def test_dry_run_prints_the_plan_and_user_data_without_any_network_call(
    no_network, public_key, monkeypatch, capsys
):
    for name, value in ENV.items():
        monkeypatch.setenv(name, value)

    code = main([
        *DEPLOY, "--public-key", str(public_key),
        "--image", "ubuntu-24.04", "--flavor", "m1.medium", "--network", "lab-net", "--ssh-user", "ubuntu", "--dry-run",
    ])

    out, err = capsys.readouterr()
    assert code == 0 and err == ""
    assert "server:         iraas-web: image ubuntu-24.04, flavor m1.medium, network lab-net" in out
    assert "ingress tcp/22 from 203.0.113.0/24 (SSH)" in out and "ingress tcp/443 from 0.0.0.0/0 (HTTPS)" in out
    assert "tcp/80 " not in out
    assert "over SSH as ubuntu@<address>" in out
    assert "/etc/iraas/api.env (0600, root): IRAAS_API_KEY" in out
    assert "/etc/iraas/aws.env (0600, root): AWS_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY" in out
    assert "GET https://<address>:443/v1/healthz" in out
    assert "#cloud-config" in out and "IRAAS_REQUEST_QUEUE_URL=" in out
    for value in SECRET_VALUES:
        assert value not in out


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


def test_an_unknown_cloud_name_is_a_clear_error(no_network, tmp_path, monkeypatch, capsys):
    clouds = tmp_path / "clouds.yaml"
    clouds.write_text("clouds: {}\n")
    monkeypatch.setenv("OS_CLIENT_CONFIG_FILE", str(clouds))

    assert main(["openstack", "teardown", "--cloud", "nowhere"]) == 1
    assert "Cloud nowhere was not found" in capsys.readouterr().err
