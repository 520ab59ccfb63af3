"""The deploy plan and its cloud-init user data, worked out with no network call."""

from __future__ import annotations

import shutil
import socket
import subprocess
from pathlib import Path

import pytest
import yaml

from iraas.cli import main
from iraas.hybrid.cloudinit import UserData, UserDataError, render_user_data
from iraas.hybrid.plan import DeployOptions, PlanError, build_plan

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
}


@pytest.fixture
def public_key(tmp_path: Path) -> Path:
    path = tmp_path / "id.pub"
    path.write_text("ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIOperatorKey operator@lab\n")
    return path


def options(public_key: Path, **changes) -> DeployOptions:
    values = dict(
        cloud="lab", ssh_cidr="203.0.113.0/24", source_url="https://git.example.com/iraas.git",
        public_key_file=public_key,
    )
    return DeployOptions(**{**values, **changes})


def files_of(user_data: str) -> dict[str, dict]:
    assert user_data.startswith("#cloud-config\n")
    return {f["path"]: f for f in yaml.safe_load(user_data)["write_files"]}


def test_the_server_gets_the_same_settings_contract_and_its_own_bind_address(public_key):
    plan = build_plan(options(public_key, port=8080), ENV)

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
        "IRAAS_WEB_BIND": "0.0.0.0:8080",
    }
    assert [(r.port, r.cidr) for r in plan.rules] == [(8080, "0.0.0.0/0"), (22, "203.0.113.0/24")]


def test_credentials_come_from_the_operator_or_are_left_out(public_key):
    with_env = files_of(build_plan(options(public_key), ENV).user_data)
    assert with_env["/etc/iraas/aws.env"]["content"] == "AWS_ACCESS_KEY_ID=AKIAWEBTIER\nAWS_SECRET_ACCESS_KEY=web/tier+secret\n"
    assert with_env["/etc/iraas/aws.env"]["permissions"] == "0600"

    without = build_plan(options(public_key, aws_credentials="none"), ENV).user_data
    assert "/etc/iraas/aws.env" not in files_of(without) and "AKIA" not in without
    unit = files_of(without)["/etc/systemd/system/iraas-web.service"]["content"]
    assert "EnvironmentFile=-/etc/iraas/aws.env" in unit  # the operator's own file, when they add it


@pytest.mark.parametrize(
    ("change", "env_change", "message"),
    [
        ({"ssh_cidr": "everyone"}, {}, "--ssh-cidr 'everyone' is not a CIDR"),
        ({}, {"AWS_SECRET_ACCESS_KEY": ""}, "needs AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY"),
        ({}, {"IRAAS_ENDPOINT_URL": "http://127.0.0.1:5000"}, "a local one"),
        ({}, {"IRAAS_REQUEST_QUEUE_URL": ""}, "IRAAS_REQUEST_QUEUE_URL is not set"),
        ({"port": 0}, {}, "not a TCP port"),
    ],
)
def test_a_plan_that_cannot_work_is_refused_with_the_reason(public_key, change, env_change, message):
    with pytest.raises(PlanError, match=message):
        build_plan(options(public_key, **change), {**ENV, **env_change})


def test_a_value_that_could_escape_its_line_is_refused():
    with pytest.raises(UserDataError, match="IRAAS_REGION"):
        render_user_data(UserData("https://git.example.com/x.git", "main", {"IRAAS_REGION": "eu\nEVIL=1"}))
    with pytest.raises(UserDataError, match="source ref"):
        render_user_data(UserData("https://git.example.com/x.git", "--upload-pack=evil", {}))


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
        "openstack", "deploy", "--cloud", "lab", "--ssh-cidr", "203.0.113.0/24",
        "--source-url", "https://git.example.com/iraas.git", "--public-key", str(public_key),
        "--image", "ubuntu-24.04", "--flavor", "m1.medium", "--network", "lab-net", "--dry-run",
    ])

    out = capsys.readouterr().out
    assert code == 0
    assert "server:         iraas-web: image ubuntu-24.04, flavor m1.medium, network lab-net" in out
    assert "ingress tcp/22 from 203.0.113.0/24 (SSH)" in out and "ingress tcp/80 from 0.0.0.0/0 (HTTP)" in out
    assert "#cloud-config" in out and "IRAAS_REQUEST_QUEUE_URL=" in out
    assert "AWS_SECRET_ACCESS_KEY=<redacted>" in out and "web/tier+secret" not in out


@pytest.fixture(scope="session")
def cloud_init() -> str:
    """Debian's cloud-init (`make install` installs it where apt is available)."""
    path = shutil.which("cloud-init")
    if path is None:
        pytest.skip("cloud-init is not installed and could not be (no root or no apt); `make install` adds it")
    return path


@pytest.mark.parametrize("credentials", ["env", "none"])
def test_the_rendered_user_data_passes_cloud_init_schema(cloud_init, public_key, tmp_path, credentials):
    path = tmp_path / "user-data.yaml"
    path.write_text(build_plan(options(public_key, aws_credentials=credentials), ENV).user_data)

    checked = subprocess.run([cloud_init, "schema", "--config-file", str(path)], capture_output=True, text=True)

    assert checked.returncode == 0, checked.stdout + checked.stderr
    assert "Valid" in checked.stdout


def test_an_unknown_cloud_name_is_a_clear_error(no_network, tmp_path, monkeypatch, capsys):
    clouds = tmp_path / "clouds.yaml"
    clouds.write_text("clouds: {}\n")
    monkeypatch.setenv("OS_CLIENT_CONFIG_FILE", str(clouds))

    assert main(["openstack", "teardown", "--cloud", "nowhere"]) == 1
    assert "Cloud nowhere was not found" in capsys.readouterr().err
