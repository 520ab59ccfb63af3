"""`iraas openstack deploy/teardown` (iraas/cli/openstack.py) before any cloud is called: --dry-run
prints the plan and the user data without any network call, an open server or a secret in the user
data is refused or warned about in one line, and an unknown cloud is a clear error."""

from __future__ import annotations

import socket

import pytest

from iraas.cli import openstack as command
from iraas.cli.main import main
from iraas.hybrid.plan import API_KEY_SOURCES, AWS_CREDENTIAL_MODES, build_plan
from tests.support.openstack import (
    API_KEYS,
    ENV,
    files_of,
    options,
)

SECRET_VALUES = ("AKIAWEBTIER", "web/tier+secret", "k-0123456789abcdef")


DEPLOY = [
    "openstack", "deploy", "--cloud", "lab", "--ssh-cidr", "203.0.113.0/24",
    "--source-url", "https://git.example.com/iraas.git",
]


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


def test_an_unknown_cloud_name_is_a_clear_error(no_network, tmp_path, monkeypatch, capsys):
    clouds = tmp_path / "clouds.yaml"
    clouds.write_text("clouds: {}\n")
    monkeypatch.setenv("OS_CLIENT_CONFIG_FILE", str(clouds))

    assert main(["openstack", "teardown", "--cloud", "nowhere"]) == 1
    assert "Cloud nowhere was not found" in capsys.readouterr().err
