"""iraas/local/provision: template.yaml provisioned on moto, in-process and over HTTP, as `iraas up` does."""

from __future__ import annotations

import json
import logging
import re
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import boto3
import moto  # noqa: F401 - moto first, so that it patches botocore before any client exists
import pytest
from botocore.config import Config
from botocore.exceptions import ClientError
from moto import mock_aws

from iraas.aws import local_credentials_env
from iraas.config import REPO_ROOT, RESOURCE_ENV
from iraas.images.settings import load_image_settings
from iraas.local.motoserver import MotoServer
from iraas.local.provision import physical_name, provision
from iraas.local.runners import local_functions
from iraas.local.stackfile import remove_stack_file, write_stack_file
from iraas.local.template import Resolver, TemplateError, load_template

TEMPLATE_PATH = Path(__file__).resolve().parents[4] / "template.yaml"
REGION = "us-east-1"


@dataclass
class Stack:
    session: boto3.Session
    endpoint_url: str | None
    resources: dict[str, str]

    def client(self, service: str):  # noqa: ANN201 - a boto3 client
        config = Config(s3={"addressing_style": "path"}) if service == "s3" else None
        return self.session.client(service, endpoint_url=self.endpoint_url, config=config)


def _session() -> boto3.Session:
    creds = local_credentials_env()
    return boto3.Session(
        aws_access_key_id=creds["AWS_ACCESS_KEY_ID"],
        aws_secret_access_key=creds["AWS_SECRET_ACCESS_KEY"],
        aws_session_token=creds["AWS_SESSION_TOKEN"],
        region_name=REGION,
    )


@pytest.fixture(scope="module")
def template() -> dict:
    return load_template(TEMPLATE_PATH)


@pytest.fixture(scope="module")
def server_stack(template: dict) -> Iterator[Stack]:
    with MotoServer() as server:
        session = _session()
        yield Stack(session, server.url, provision(template, session, server.url, REGION))


@pytest.fixture(params=["in-process", "server"])
def local_stack(request: pytest.FixtureRequest, template: dict) -> Iterator[Stack]:
    if request.param == "server":
        yield request.getfixturevalue("server_stack")
        return
    with mock_aws():
        session = _session()
        yield Stack(session, None, provision(template, session, None, REGION))


def test_buckets_are_private_and_encrypted(local_stack: Stack) -> None:
    s3 = local_stack.client("s3")
    for logical_id in ("ImageInputBucket", "ImageOutputBucket"):
        bucket = local_stack.resources[logical_id]
        rules = s3.get_bucket_encryption(Bucket=bucket)["ServerSideEncryptionConfiguration"]
        assert rules["Rules"][0]["ApplyServerSideEncryptionByDefault"]["SSEAlgorithm"] == "AES256"
        block = s3.get_public_access_block(Bucket=bucket)["PublicAccessBlockConfiguration"]
        assert block == dict.fromkeys(
            ["BlockPublicAcls", "IgnorePublicAcls", "BlockPublicPolicy", "RestrictPublicBuckets"],
            True,
        )
        ownership = s3.get_bucket_ownership_controls(Bucket=bucket)["OwnershipControls"]
        assert ownership["Rules"] == [{"ObjectOwnership": "BucketOwnerEnforced"}]
    inputs = local_stack.resources["ImageInputBucket"]
    lifecycle = s3.get_bucket_lifecycle_configuration(Bucket=inputs)
    assert lifecycle["Rules"][0]["Expiration"] == {"Days": 7}  # InputRetentionDays' default
    # Objects are usable (no bucket policy locally, see provision.SKIPPED_BECAUSE) and encrypted.
    s3.put_object(Bucket=inputs, Key="k", Body=b"x")
    head = s3.head_object(Bucket=inputs, Key="k")
    assert head["ServerSideEncryption"] == "AES256"


def _attributes(sqs, url: str) -> dict[str, str]:  # noqa: ANN001 - a boto3 client
    return sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["All"])["Attributes"]


def test_request_queue_redrives_to_dead_letter_queue(local_stack: Stack) -> None:
    sqs = local_stack.client("sqs")
    dlq = _attributes(sqs, local_stack.resources["RequestDeadLetterQueue"])
    request = _attributes(sqs, local_stack.resources["RequestQueue"])
    assert json.loads(request["RedrivePolicy"]) == {
        "deadLetterTargetArn": dlq["QueueArn"],
        "maxReceiveCount": 3,
    }
    assert request["VisibilityTimeout"] == "60"
    assert request["SqsManagedSseEnabled"] == "true"
    assert dlq["MessageRetentionPeriod"] == str(14 * 24 * 3600)
    response = _attributes(sqs, local_stack.resources["ResponseQueue"])
    assert response["MessageRetentionPeriod"] == "3600"
    assert "FifoQueue" not in request  # standard queues


def test_recovery_settings_apply_locally_and_the_rest_of_it_is_skipped(local_stack: Stack) -> None:
    """Point-in-time recovery on the students' table, the face function's failed-events queue; the
    log groups, the API Gateway account and the function's EventInvokeConfig are AWS's alone."""
    dynamodb = local_stack.client("dynamodb")
    backups = dynamodb.describe_continuous_backups(TableName=local_stack.resources["StudentsTable"])
    recovery = backups["ContinuousBackupsDescription"]["PointInTimeRecoveryDescription"]
    assert recovery["PointInTimeRecoveryStatus"] == "ENABLED"
    failed = _attributes(local_stack.client("sqs"), local_stack.resources["FaceRecognitionFailedEvents"])
    assert failed["MessageRetentionPeriod"] == str(14 * 24 * 3600) and failed["SqsManagedSseEnabled"] == "true"
    assert "FaceRecognitionFunction.EventQueue" in local_stack.resources  # `iraas up` still runs it
    for skipped in ("WebTierLogGroup", "FaceRecognitionLogGroup", "ApiAccessLogGroup", "ApiGatewayAccount"):
        assert skipped not in local_stack.resources


def test_callbacks_get_their_queues_and_a_runner_and_no_secret_is_made(local_stack: Stack, template: dict) -> None:
    """The callback function takes the messages of its queue (an SQS runner, as on AWS its trigger);
    the webhook secret is $IRAAS_WEBHOOK_SECRET locally, so neither it nor its key is created."""
    sqs = local_stack.client("sqs")
    dlq = _attributes(sqs, local_stack.resources["CallbackDeadLetterQueue"])
    jobs = _attributes(sqs, local_stack.resources["CallbackQueue"])
    assert json.loads(jobs["RedrivePolicy"]) == {"deadLetterTargetArn": dlq["QueueArn"], "maxReceiveCount": 5}
    assert jobs["VisibilityTimeout"] == "360" and dlq["MessageRetentionPeriod"] == str(14 * 24 * 3600)
    assert jobs["SqsManagedSseEnabled"] == dlq["SqsManagedSseEnabled"] == "true"
    assert local_stack.resources["CallbackFunction.SqsQueue"] == local_stack.resources["CallbackQueue"]
    [runner] = [f for f in local_functions(template, local_stack.resources, REPO_ROOT) if f.logical_id == "CallbackFunction"]
    assert (runner.source, runner.queue_url, runner.timeout_s) == ("sqs", local_stack.resources["CallbackQueue"], 60)
    assert runner.handler == f"{REPO_ROOT / 'functions' / 'callbacks' / 'handler.py'}:lambda_handler"
    for skipped in ("WebhookSecret", "WebhookSecretKey", "CallbackRole", "CallbackLogGroup"):
        assert skipped not in local_stack.resources
    assert local_stack.client("secretsmanager").list_secrets()["SecretList"] == []


def test_the_webhook_secret_is_skipped_with_its_reason(template: dict, caplog: pytest.LogCaptureFixture) -> None:
    with mock_aws(), caplog.at_level(logging.DEBUG, logger="iraas.local.provision"):
        provision(template, _session(), None, REGION)
    skipped = [r.getMessage() for r in caplog.records if r.getMessage().startswith("skipped")]
    assert "skipped WebhookSecret (AWS::SecretsManager::Secret): locally the secret is $IRAAS_WEBHOOK_SECRET" in skipped


def test_the_alarms_dashboard_and_their_topic_are_skipped_with_their_reason(
        template: dict, caplog: pytest.LogCaptureFixture) -> None:
    """CloudWatch does not watch the local endpoint: nothing of the alarms is created, and nothing
    created refers to them."""
    with mock_aws(), caplog.at_level(logging.DEBUG, logger="iraas.local.provision"):
        resources = provision(template, _session(), None, REGION, parameters={"AlarmEmail": "ops@example.org"})
        assert _session().client("cloudwatch").describe_alarms()["MetricAlarms"] == []
        assert _session().client("sns").list_topics()["Topics"] == []
    skipped = [r.getMessage() for r in caplog.records if r.getMessage().startswith("skipped")]
    watching = "CloudWatch does not watch the local stack (GET /metrics does)"
    assert f"skipped RequestQueueAgeAlarm (AWS::CloudWatch::Alarm): {watching}" in skipped
    assert f"skipped Dashboard (AWS::CloudWatch::Dashboard): {watching}" in skipped
    for name in ("AlarmTopic", "AlarmTopicKey", "AlarmEmailSubscription"):
        assert any(m.startswith(f"skipped {name} (") for m in skipped), name
        assert name not in resources


def test_message_received_three_times_lands_in_dead_letter_queue(local_stack: Stack) -> None:
    """The worker relies on SQS (here moto) moving a thrice-failed request aside."""
    sqs = local_stack.client("sqs")
    request_url = local_stack.resources["RequestQueue"]
    dlq_url = local_stack.resources["RequestDeadLetterQueue"]
    sqs.send_message(QueueUrl=request_url, MessageBody="poison")
    for _ in range(3):  # received and not deleted: a failed attempt, visible again at once
        got = sqs.receive_message(QueueUrl=request_url, VisibilityTimeout=0)
        assert [m["Body"] for m in got.get("Messages", [])] == ["poison"]
    assert "Messages" not in sqs.receive_message(QueueUrl=request_url, VisibilityTimeout=0)
    moved = sqs.receive_message(QueueUrl=dlq_url, MessageAttributeNames=["All"])
    assert [m["Body"] for m in moved["Messages"]] == ["poison"]
    sqs.delete_message(QueueUrl=dlq_url, ReceiptHandle=moved["Messages"][0]["ReceiptHandle"])


def test_outputs_cover_every_configured_resource(local_stack: Stack, template: dict) -> None:
    assert set(RESOURCE_ENV) <= set(local_stack.resources)
    resolver = Resolver(template, region=REGION)
    resolver.physical.update(local_stack.resources)
    outputs = resolver.outputs()
    for logical_id in RESOURCE_ENV:
        assert outputs[logical_id] == local_stack.resources[logical_id]
    if local_stack.endpoint_url:  # queue URLs point at the endpoint that made them
        assert local_stack.resources["RequestQueue"].startswith(local_stack.endpoint_url)


def test_stack_file_feeds_settings(local_stack: Stack, tmp_path: Path) -> None:
    home = tmp_path / ".iraas"
    endpoint = local_stack.endpoint_url or "http://127.0.0.1:5000"
    write_stack_file(home / "stack.json", endpoint, REGION, local_stack.resources, "iraas")
    assert json.loads((home / "stack.json").read_text())["stack_name"] == "iraas"
    assert [p.name for p in home.iterdir()] == ["stack.json"]  # no temporary file left behind

    settings = load_image_settings({"IRAAS_HOME": str(home)})
    assert settings.endpoint_url == endpoint
    assert settings.region == REGION
    assert settings.image_input_bucket == local_stack.resources["ImageInputBucket"]
    assert settings.image_output_bucket == local_stack.resources["ImageOutputBucket"]
    assert settings.request_queue_url == local_stack.resources["RequestQueue"]
    assert settings.response_queue_url == local_stack.resources["ResponseQueue"]
    assert settings.dead_letter_queue_url == local_stack.resources["RequestDeadLetterQueue"]

    remove_stack_file(home / "stack.json")
    remove_stack_file(home / "stack.json")  # already gone: fine
    assert not (home / "stack.json").exists()


def test_provisioning_twice_reuses_resources(local_stack: Stack, template: dict) -> None:
    again = provision(template, local_stack.session, local_stack.endpoint_url, REGION)
    assert again == local_stack.resources
    s3 = local_stack.client("s3")
    names = {b["Name"] for b in s3.list_buckets()["Buckets"]}
    for logical_id in ("ImageInputBucket", "ImageOutputBucket"):
        assert local_stack.resources[logical_id] in names


def test_physical_names_follow_s3_rules() -> None:
    name = physical_name("My_Stack." * 10, "ImageInputBucket", 63)
    assert len(name) <= 63 and re.fullmatch(r"[a-z0-9][a-z0-9-]*[a-z0-9]", name)
    assert name == physical_name("My_Stack." * 10, "ImageInputBucket", 63)  # reruns find it
    assert name != physical_name("My_Stack." * 10, "ImageInputBucket2", 63)
    assert physical_name("s", "Q", 80, ".fifo").endswith(".fifo")


EXTRA_TEMPLATE = {
    "Resources": {
        "Jobs": {
            "Type": "AWS::DynamoDB::Table",
            "Properties": {
                "BillingMode": "PAY_PER_REQUEST",
                "AttributeDefinitions": [
                    {"AttributeName": "id", "AttributeType": "S"},
                    {"AttributeName": "owner", "AttributeType": "S"},
                ],
                "KeySchema": [{"AttributeName": "id", "KeyType": "HASH"}],
                "GlobalSecondaryIndexes": [
                    {
                        "IndexName": "by-owner",
                        "KeySchema": [{"AttributeName": "owner", "KeyType": "HASH"}],
                        "Projection": {"ProjectionType": "ALL"},
                    }
                ],
                "TimeToLiveSpecification": {"AttributeName": "expires", "Enabled": True},
                "SSESpecification": {"SSEEnabled": True},
            },
        },
        "Uploads": {
            "Type": "AWS::SQS::Queue",
            "Properties": {"Tags": [{"Key": "app", "Value": "iraas"}]},
        },
        "UploadsPolicy": {
            "Type": "AWS::SQS::QueuePolicy",
            "Properties": {
                "Queues": [{"Ref": "Uploads"}],
                "PolicyDocument": {
                    "Version": "2012-10-17",
                    "Statement": [
                        {
                            "Effect": "Allow",
                            "Principal": {"Service": "s3.amazonaws.com"},
                            "Action": "sqs:SendMessage",
                            "Resource": {"Fn::GetAtt": ["Uploads", "Arn"]},
                        }
                    ],
                },
            },
        },
        "Inbox": {
            "Type": "AWS::S3::Bucket",
            "DependsOn": "UploadsPolicy",  # as in AWS: S3 checks it may send before it accepts
            "Properties": {
                "NotificationConfiguration": {
                    "QueueConfigurations": [
                        {"Event": "s3:ObjectCreated:*", "Queue": {"Fn::GetAtt": ["Uploads", "Arn"]}}
                    ]
                }
            },
        },
        "Handler": {"Type": "AWS::Serverless::Function", "Properties": {"Runtime": "python3.12"}},
        "Role": {"Type": "AWS::IAM::Role", "Properties": {}},
    }
}


@mock_aws
def test_tables_notifications_and_skipped_types(caplog: pytest.LogCaptureFixture) -> None:
    session = _session()
    with caplog.at_level(logging.DEBUG, logger="iraas.local.provision"):
        resources = provision(EXTRA_TEMPLATE, session, None, REGION, stack_name="extra")
    assert set(resources) == {"Jobs", "Uploads", "Inbox"}
    skipped = [r.getMessage() for r in caplog.records if r.getMessage().startswith("skipped")]
    assert any("Handler (AWS::Serverless::Function)" in m for m in skipped)
    assert any("Role (AWS::IAM::Role)" in m for m in skipped)

    dynamodb = session.client("dynamodb")
    table = dynamodb.describe_table(TableName=resources["Jobs"])["Table"]
    assert table["BillingModeSummary"]["BillingMode"] == "PAY_PER_REQUEST"
    assert table["GlobalSecondaryIndexes"][0]["IndexName"] == "by-owner"
    ttl = dynamodb.describe_time_to_live(TableName=resources["Jobs"])["TimeToLiveDescription"]
    assert ttl["AttributeName"] == "expires"

    sqs = session.client("sqs")
    policy = sqs.get_queue_attributes(QueueUrl=resources["Uploads"], AttributeNames=["Policy"])
    assert json.loads(policy["Attributes"]["Policy"])["Statement"][0]["Action"] == "sqs:SendMessage"

    # S3 -> SQS notification: what a later issue uses to start work on upload.
    session.client("s3").put_object(Bucket=resources["Inbox"], Key="a.jpg", Body=b"x")
    received = sqs.receive_message(QueueUrl=resources["Uploads"], MaxNumberOfMessages=10)
    bodies = [json.loads(m["Body"]) for m in received["Messages"]]
    # Like S3, moto first sends an s3:TestEvent when the notification is configured.
    assert bodies[0].get("Event") == "s3:TestEvent"
    assert bodies[1]["Records"][0]["s3"]["object"]["key"] == "a.jpg"

    assert provision(EXTRA_TEMPLATE, session, None, REGION, stack_name="extra") == resources


@mock_aws
def test_reference_to_a_skipped_resource_is_a_clear_error() -> None:
    template = {
        "Resources": {
            "Fn": {"Type": "AWS::Serverless::Function"},
            "Q": {"Type": "AWS::SQS::Queue", "Properties": {"QueueName": {"Ref": "Fn"}}},
        }
    }
    with pytest.raises(TemplateError, match="Q: cannot resolve Ref Fn: AWS::Serverless::Function"):
        provision(template, _session(), None, REGION)


@mock_aws
def test_moto_enforces_tls_only_bucket_policy_ignoring_its_condition(template: dict) -> None:
    """Why AWS::S3::BucketPolicy is skipped locally: moto would refuse every object request.

    If this starts failing, moto evaluates the condition and the policy can be applied.
    """
    session = _session()
    resources = provision(template, session, None, REGION)
    resolver = Resolver(template, region=REGION)
    resolver.physical.update(resources)
    bucket = resources["ImageInputBucket"]
    resolver.attributes["ImageInputBucket"] = {"Arn": f"arn:aws:s3:::{bucket}"}
    policy = resolver.resolve(template["Resources"]["ImageInputBucketPolicy"]["Properties"])
    s3 = session.client("s3")
    s3.put_bucket_policy(Bucket=policy["Bucket"], Policy=json.dumps(policy["PolicyDocument"]))
    with pytest.raises(ClientError, match="403"):
        s3.put_object(Bucket=policy["Bucket"], Key="k", Body=b"x")
