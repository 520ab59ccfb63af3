"""template.yaml (not a module: the stack itself) passes cfn-lint and keeps the properties users rely
on: generated names, private encrypted TLS-only buckets, a dead-letter queue, every resource an
output. (`sam validate --lint`, a process: tests/integration/template/test_lint.py.)"""

from __future__ import annotations

from pathlib import Path

import pytest
from cfnlint.api import lint

from iraas.config import RESOURCE_ENV
from iraas.local.template import load_template

TEMPLATE_PATH = Path(__file__).resolve().parents[3] / "template.yaml"


@pytest.fixture(scope="module")
def template() -> dict:
    return load_template(TEMPLATE_PATH)


def _of_type(template: dict, kind: str) -> dict[str, dict]:
    return {k: v for k, v in template["Resources"].items() if v["Type"] == kind}


def test_cfn_lint_reports_nothing() -> None:
    text = TEMPLATE_PATH.read_text()
    matches = lint(text, regions=["us-east-1"])
    assert not matches, "\n".join(f"{m.rule.id} line {m.linenumber}: {m.message}" for m in matches)
    # The linter really checks this template (SAM transform included): a bad value is caught.
    broken = lint(text.replace("VisibilityTimeout: 60", "VisibilityTimeout: 99999"))
    assert [m.rule.id for m in broken] == ["E3034"]


def test_template_is_sam_with_generated_names(template: dict) -> None:
    assert template["Transform"] == "AWS::Serverless-2016-10-31"
    for bucket in _of_type(template, "AWS::S3::Bucket").values():
        assert "BucketName" not in bucket["Properties"]  # CloudFormation names it
    for queue in _of_type(template, "AWS::SQS::Queue").values():
        assert "QueueName" not in queue["Properties"]
        assert not queue["Properties"].get("FifoQueue")


def test_every_bucket_is_private_encrypted_and_tls_only(template: dict) -> None:
    buckets = _of_type(template, "AWS::S3::Bucket")
    policies = {
        p["Properties"]["Bucket"]["Ref"]: p["Properties"]["PolicyDocument"]
        for p in _of_type(template, "AWS::S3::BucketPolicy").values()
    }
    assert {"ImageInputBucket", "ImageOutputBucket"} <= set(buckets)
    for name, bucket in buckets.items():
        props = bucket["Properties"]
        assert props["PublicAccessBlockConfiguration"] == dict.fromkeys(
            ["BlockPublicAcls", "BlockPublicPolicy", "IgnorePublicAcls", "RestrictPublicBuckets"],
            True,
        ), name
        for rule in props["BucketEncryption"]["ServerSideEncryptionConfiguration"]:
            assert rule["ServerSideEncryptionByDefault"]["SSEAlgorithm"] in ("AES256", "aws:kms")
        assert props["OwnershipControls"]["Rules"] == [{"ObjectOwnership": "BucketOwnerEnforced"}]
        denies_plain_http = [
            s
            for s in policies[name]["Statement"]
            if s["Effect"] == "Deny"
            and s["Condition"] == {"Bool": {"aws:SecureTransport": "false"}}
            and {"Fn::GetAtt": [name, "Arn"]} in s["Resource"]
            and {"Fn::Sub": f"${{{name}.Arn}}/*"} in s["Resource"]
        ]
        assert denies_plain_http, f"{name} has no TLS-only policy"


def test_request_queue_redrives_to_dead_letter_queue(template: dict) -> None:
    queues = _of_type(template, "AWS::SQS::Queue")
    request = queues["RequestQueue"]["Properties"]
    assert request["RedrivePolicy"] == {
        "deadLetterTargetArn": {"Fn::GetAtt": ["RequestDeadLetterQueue", "Arn"]},
        "maxReceiveCount": 3,
    }
    assert request["VisibilityTimeout"] == 60
    assert queues["RequestDeadLetterQueue"]["Properties"]["MessageRetentionPeriod"] == 1209600
    for queue in queues.values():
        assert queue["Properties"]["SqsManagedSseEnabled"] is True


def test_outputs_name_every_configured_resource(template: dict) -> None:
    for logical_id in RESOURCE_ENV:
        assert template["Outputs"][logical_id]["Value"] == {"Ref": logical_id}
