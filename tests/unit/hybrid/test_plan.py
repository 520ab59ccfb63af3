"""iraas/hybrid/plan.py: the deploy plan and its cloud-init user data, worked out with no network call."""

from __future__ import annotations

import re

import pytest
import yaml

from iraas.hybrid.cloudinit import FIRST_BOOT, FIRST_BOOT_PATH, UNIT
from iraas.hybrid.plan import PlanError, build_plan
from tests.support.openstack import (
    API_KEYS,
    ENV,
    files_of,
    make_certificate,
    options,
    unit_of,
)

SECRET_VALUES = ("AKIAWEBTIER", "web/tier+secret", "k-0123456789abcdef")


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
        "IRAAS_RUNTIME": "openvino",
        "IRAAS_HOME": "/var/lib/iraas",
        "IRAAS_WEB_BIND": "0.0.0.0:8443",
    }
    assert [(r.port, r.cidr, r.purpose) for r in plan.rules] == [(8443, "0.0.0.0/0", "HTTPS"), (22, "203.0.113.0/24", "SSH")]


def test_callbacks_are_on_with_the_secrets_arn_and_the_secret_itself_never_travels(public_key):
    arn = "arn:aws:secretsmanager:eu-west-1:123456789012:secret:WebhookSecret-abc"
    env = {**ENV, "IRAAS_WEBHOOK_SECRET_ARN": arn, "IRAAS_CALLBACK_ALLOW": "hooks.internal",
           "IRAAS_WEBHOOK_SECRET": "the-webhook-secret-value-0123"}
    user_data = build_plan(options(public_key), env).user_data
    web_env = dict(line.split("=", 1) for line in files_of(user_data)["/etc/iraas/web.env"]["content"].splitlines())
    assert (web_env["IRAAS_WEBHOOK_SECRET_ARN"], web_env["IRAAS_CALLBACK_ALLOW"]) == (arn, "hooks.internal")
    assert "the-webhook-secret-value-0123" not in user_data


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
