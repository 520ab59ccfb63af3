"""template.yaml (not a module: the stack itself), its completion callbacks: the worker queues a job,
an SQS-triggered image function POSTs it, signed with a generated secret that only it may read."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from iraas.local.template import load_template, references
from tests.support.iam import allows, resolved_statements

REPO_ROOT = Path(__file__).resolve().parents[3]
TEMPLATE = load_template(REPO_ROOT / "template.yaml")
RESOURCES = TEMPLATE["Resources"]
PSEUDO = {"AWS::Partition", "AWS::Region", "AWS::AccountId", "AWS::StackName"}


def _statements(role: str) -> list[dict[str, Any]]:
    return [s for p in RESOURCES[role]["Properties"]["Policies"] for s in p["PolicyDocument"]["Statement"]]


def _actions(statement: dict[str, Any]) -> set[str]:
    action = statement["Action"]
    return {action} if isinstance(action, str) else set(action)


def test_the_function_is_an_image_that_takes_ten_jobs_at_a_time_from_its_queue():
    function = RESOURCES["CallbackFunction"]
    assert function["Metadata"]["Dockerfile"] == "functions/callbacks/Dockerfile"
    dockerfile = (REPO_ROOT / "functions" / "callbacks" / "Dockerfile").read_text()
    assert "FROM public.ecr.aws/lambda/python:3.12" in dockerfile and "COPY functions/callbacks/handler.py" in dockerfile
    assert "!functions/callbacks/" in (REPO_ROOT / ".dockerignore").read_text().splitlines()  # in the build context
    props = function["Properties"]
    assert (props["PackageType"], props["ImageConfig"]["Command"]) == ("Image", ["handler.lambda_handler"])
    assert props["ReservedConcurrentExecutions"] == {"Ref": "CallbackConcurrency"}
    [event] = props["Events"].values()
    assert event["Type"] == "SQS"
    assert event["Properties"]["Queue"] == {"Fn::GetAtt": ["CallbackQueue", "Arn"]}
    assert event["Properties"]["BatchSize"] == 10
    # The handler names the jobs it could not settle (batchItemFailures): only those come back.
    assert event["Properties"]["FunctionResponseTypes"] == ["ReportBatchItemFailures"]
    # The trigger runs no more batches than the function may: a throttled batch would use up a receive.
    assert event["Properties"]["ScalingConfig"] == {"MaximumConcurrency": {"Ref": "CallbackConcurrency"}}
    assert TEMPLATE["Parameters"]["CallbackConcurrency"]["Default"] == 5


def test_a_crashing_handler_leaves_its_jobs_to_the_dead_letter_queue_after_five_receives():
    function = RESOURCES["CallbackFunction"]["Properties"]
    queue = RESOURCES["CallbackQueue"]["Properties"]
    # AWS's advice for an SQS trigger: visibility at least six times the function's timeout.
    assert queue["VisibilityTimeout"] >= 6 * function["Timeout"] == 360
    assert queue["RedrivePolicy"] == {"deadLetterTargetArn": {"Fn::GetAtt": ["CallbackDeadLetterQueue", "Arn"]},
                                      "maxReceiveCount": 5}
    assert RESOURCES["CallbackDeadLetterQueue"]["Properties"]["MessageRetentionPeriod"] == 1209600


def test_the_function_may_take_and_requeue_its_jobs_give_them_up_and_read_the_secret_and_nothing_else():
    role = RESOURCES["CallbackRole"]["Properties"]
    assert "ManagedPolicyArns" not in role
    statements = _statements("CallbackRole")
    touched = set().union(*(references(s["Resource"]) for s in statements)) - PSEUDO
    assert touched == {"CallbackLogGroup", "CallbackQueue", "CallbackDeadLetterQueue", "WebhookSecret", "WebhookSecretKey"}
    assert set().union(*(_actions(s) for s in statements)) == {
        "logs:CreateLogStream", "logs:PutLogEvents", "sqs:ReceiveMessage", "sqs:DeleteMessage",
        "sqs:GetQueueAttributes", "sqs:SendMessage", "secretsmanager:GetSecretValue", "kms:Decrypt",
    }
    granted = resolved_statements(TEMPLATE, "CallbackRole", "iraas")
    for queue in ("<CallbackQueue.Arn>", "<CallbackDeadLetterQueue.Arn>"):
        assert allows(granted, "sqs:SendMessage", queue, {})
    assert not allows(granted, "sqs:ReceiveMessage", "<CallbackDeadLetterQueue.Arn>", {})
    assert allows(granted, "secretsmanager:GetSecretValue", "<WebhookSecret>", {})
    # The key decrypts through Secrets Manager only: a direct kms:Decrypt call is not allowed.
    via = {"kms:ViaService": "secretsmanager.us-east-1.amazonaws.com"}
    assert allows(granted, "kms:Decrypt", "<WebhookSecretKey.Arn>", via)
    assert not allows(granted, "kms:Decrypt", "<WebhookSecretKey.Arn>", {"kms:ViaService": "s3.us-east-1.amazonaws.com"})


def test_the_secret_is_generated_kept_under_its_own_key_and_readable_by_the_callback_role_alone():
    secret = RESOURCES["WebhookSecret"]
    assert secret["Type"] == "AWS::SecretsManager::Secret"
    assert secret["Properties"]["GenerateSecretString"] == {"PasswordLength": 48, "ExcludePunctuation": True}
    assert "SecretString" not in secret["Properties"]  # no value in the template
    assert "Iraas-Signature" in secret["Properties"]["Description"]
    assert secret["Properties"]["KmsKeyId"] == {"Ref": "WebhookSecretKey"}
    key = RESOURCES["WebhookSecretKey"]["Properties"]
    assert key["EnableKeyRotation"] is True
    [statement] = key["KeyPolicy"]["Statement"]  # the account's IAM policies decide, as for the other resources
    assert statement["Principal"] == {"AWS": {"Fn::Sub": "arn:${AWS::Partition}:iam::${AWS::AccountId}:root"}}
    # Rotation would change the value every receiver checks signatures with: skipped, with its reason.
    [skip] = secret["Metadata"]["checkov"]["skip"]
    assert skip["id"] == "CKV2_AWS_57" and "receiver" in skip["comment"]
    readers = {name for name, r in RESOURCES.items() if r["Type"] == "AWS::IAM::Role"
               and "WebhookSecret" in json.dumps(r["Properties"].get("Policies", []))}
    assert readers == {"CallbackRole"}


def test_the_secrets_value_is_never_in_an_environment_only_its_arn():
    text = (REPO_ROOT / "template.yaml").read_text()
    assert "{{resolve:secretsmanager" not in text
    function = RESOURCES["CallbackFunction"]["Properties"]["Environment"]["Variables"]
    web = TEMPLATE["Globals"]["Function"]["Environment"]["Variables"]  # chalice's APIHandler: callbacks on
    for variables in (function, web):
        assert variables["IRAAS_WEBHOOK_SECRET_ARN"] == {"Ref": "WebhookSecret"}
        assert variables["IRAAS_CALLBACK_QUEUE_URL"] == {"Ref": "CallbackQueue"}
        assert variables["IRAAS_CALLBACK_DEAD_LETTER_QUEUE_URL"] == {"Ref": "CallbackDeadLetterQueue"}
        assert "IRAAS_WEBHOOK_SECRET" not in variables
    assert function["IRAAS_CALLBACK_ALLOW"] == {"Ref": "CallbackAllowList"}
    assert TEMPLATE["Parameters"]["CallbackAllowList"]["Default"] == ""
    assert TEMPLATE["Outputs"]["WebhookSecret"]["Value"] == {"Ref": "WebhookSecret"}


def test_the_worker_queues_callbacks_and_the_web_tier_counts_them():
    worker = resolved_statements(TEMPLATE, "WorkerRole", "iraas", parameters={"WorkerAmiId": "ami-1"})
    assert allows(worker, "sqs:SendMessage", "<CallbackQueue.Arn>", {})
    assert not allows(worker, "sqs:SendMessage", "<CallbackDeadLetterQueue.Arn>", {})
    user_data = RESOURCES["WorkerLaunchTemplate"]["Properties"]["LaunchTemplateData"]["UserData"]["Fn::Base64"]["Fn::Sub"]
    assert "IRAAS_CALLBACK_QUEUE_URL=${CallbackQueue}\n" in user_data
    web = resolved_statements(TEMPLATE, "ApiHandlerRole", "iraas")
    for queue in ("<CallbackQueue.Arn>", "<CallbackDeadLetterQueue.Arn>"):  # /v1/stats
        assert allows(web, "sqs:GetQueueAttributes", queue, {})
        assert not allows(web, "sqs:SendMessage", queue, {}) and not allows(web, "sqs:ReceiveMessage", queue, {})
    assert not allows(web, "secretsmanager:GetSecretValue", "<WebhookSecret>", {})
