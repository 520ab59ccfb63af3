"""A deploy rehearsal that checks least privilege by behaviour: `make package`'s template, expanded
by SAM's own translator (what `sam deploy` does), is created as a stack in moto's CloudFormation;
then one image goes through the web tier and a worker, each signed with its own role's credentials
(``sts:AssumeRole`` on the roles the stack created) while moto enforces IAM. Removing a statement a
role needs makes that call fail with AccessDenied.

What the stack is created from: the expanded template, verbatim (the roles and their policies, the
buckets, queues, table, functions, launch template), less its ``AWS::ApiGateway::Deployment``: moto
cannot import the RestApi's Swagger 2.0 Body (it imports OpenAPI 3 only), so the API has no methods
and moto refuses to deploy it. moto skips, with a warning, what it cannot create at all (bucket
policies, the API's stage, usage plan and key, the account's log role setting, the face function's
EventInvokeConfig, the CloudWatch alarms: their topic, its key and the dashboard are created, and
the dashboard names the alarms by their ARNs, not by GetAtt, for that); moto's CloudFormation and
enforcement are patched as tests/support/moto_iam.py says, where what moto's enforcement checks is
listed (resource ARNs for S3, SQS, IAM and STS; no conditions, no bucket policies: those are tested
elsewhere, e.g. tests/integration/web/test_packaged_security.py and tests/support/iam.py).

Each tier runs with what the stack gives it: the web tier with the APIHandler function's
environment as moto's CloudFormation resolved it (and on its Lambda code path: one SendMessage
per request, the invocation polls its own reply queue), the worker with the environment file the
launch template's user data writes, the callback function with its environment (the webhook
secret read by its ARN, as at its cold start; moto's CloudFormation creates the secret with the
patch in tests/support/moto_iam.py, and moto checks Secrets Manager calls against the secret's ARN).
What the callback function does on AWS is rehearsed as Lambda's SQS trigger runs it: its jobs
received with its role, each settled (a POST is stood in for, and DNS: no network here). The stack's
SQS triggers are disabled once it is created, for moto would run their functions at each message.
"""

from __future__ import annotations

import base64
import contextlib
import dataclasses
import io
import json
import random
import re
import socket
import time
import warnings
import zipfile
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import boto3
import moto
import pytest
from botocore.exceptions import ClientError
from moto.core import enable_iam_authentication
from PIL import Image

from iraas import aws
from iraas.callbacks.delivery import Attempt
from iraas.callbacks.sender import CallbackSender
from iraas.callbacks.settings import CallbackSettings, load_callback_settings, load_secret
from iraas.errors import ConfigError
from iraas.images import replies
from iraas.images.jobs import CARRY_LIMIT, ImageResult, new_id
from iraas.images.model.runtime import Classification, Prediction
from iraas.images.replies import InlineReplies
from iraas.images.service import ImageService
from iraas.images.settings import ImageSettings, load_image_settings
from iraas.images.worker import Worker
from iraas.media.uploads import parse_upload
from iraas.scaling.settings import load_scaling_settings
from iraas.scaling.status import S3StatusStore
from tests.support import moto_iam

STACK = "iraas"
REGION = "us-east-1"

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def expanded(expanded_template: dict[str, Any]) -> dict[str, Any]:
    """`make package`'s template as SAM's translator expands it for `sam deploy`."""
    return expanded_template  # without_statement() edits a copy


def without_statement(template: dict[str, Any], role: str, sid: str) -> dict[str, Any]:
    """``template`` with the statement ``sid`` taken out of ``role``'s policies (a copy)."""
    copy = json.loads(json.dumps(template))
    found = 0
    for policy in copy["Resources"][role]["Properties"]["Policies"]:
        statements = policy["PolicyDocument"]["Statement"]
        kept = [s for s in statements if not (isinstance(s, dict) and s.get("Sid") == sid)]
        found += len(statements) - len(kept)
        policy["PolicyDocument"]["Statement"] = kept
    assert found == 1, f"{role} has {found} statements {sid}"
    return copy


def _deployable(template: dict[str, Any]) -> str:
    """What moto's CloudFormation can create (the module docstring says what is left out, and why)."""
    resources = {name: r for name, r in template["Resources"].items() if r["Type"] != "AWS::ApiGateway::Deployment"}
    return json.dumps({**template, "Resources": resources})


class TheClassifier:
    """Stands in for the model: the point is the AWS calls around it."""

    def classify_bytes(self, blobs: Sequence[bytes], top: int = 0) -> list[Any]:
        return [Classification((Prediction("tench", "n01440764", 0.9, 0),)) for _ in blobs]


@dataclass(frozen=True)
class Tier:
    """What one tier runs with: the settings the stack gives it, and its role's credentials."""

    settings: Any  # ImageSettings; ScalingSettings for the scaler, CallbackSettings for the callback function
    session: boto3.session.Session
    env: dict[str, str] = field(default_factory=dict)  # the environment the stack gave it

    def client(self, service: str) -> Any:
        return self.session.client(service, region_name=REGION)


@dataclass(frozen=True)
class Deployed:
    web: Tier
    worker: Tier
    scaler: Tier
    sweeper: Tier
    callbacks: Tier


def _role_session(resources: dict[str, str], role: str) -> boto3.session.Session:
    """Credentials of ``role`` (assumed while enforcement is off: trust policies are not tested here)."""
    arn = boto3.client("iam", region_name=REGION).get_role(RoleName=resources[role])["Role"]["Arn"]
    credentials = boto3.client("sts", region_name=REGION).assume_role(
        RoleArn=arn, RoleSessionName=f"rehearsal-{role}")["Credentials"]
    return boto3.session.Session(
        aws_access_key_id=credentials["AccessKeyId"], aws_secret_access_key=credentials["SecretAccessKey"],
        aws_session_token=credentials["SessionToken"], region_name=REGION,
    )


def _function_env(resources: dict[str, str], function_id: str) -> dict[str, str]:
    """The environment the stack gave a function (the web tier's APIHandler, the scaler's Scale, ...)."""
    function = boto3.client("lambda", region_name=REGION).get_function_configuration(
        FunctionName=resources[function_id])
    return dict(function["Environment"]["Variables"])


def _worker_env(resources: dict[str, str]) -> dict[str, str]:
    """The environment file the launch template's user data writes for the worker."""
    versions = boto3.client("ec2", region_name=REGION).describe_launch_template_versions(
        LaunchTemplateId=resources["WorkerLaunchTemplate"])["LaunchTemplateVersions"]
    user_data = base64.b64decode(versions[0]["LaunchTemplateData"]["UserData"]).decode()
    match = re.search(r"cat > /etc/iraas/worker\.env <<ENV\n(.*?)\n\s*ENV\n", user_data, re.DOTALL)
    assert match, user_data
    pairs = (line.strip().split("=", 1) for line in match.group(1).splitlines())
    return {name: value for name, value in pairs if "$" not in value}  # $INSTANCE_ID: from the metadata


# What moto's CloudFormation skips, with a warning, creating nothing (see the module docstring).
SKIPPED_BY_MOTO = {
    "AWS::S3::BucketPolicy", "AWS::ApiGateway::Stage", "AWS::ApiGateway::UsagePlan", "AWS::ApiGateway::ApiKey",
    "AWS::ApiGateway::UsagePlanKey", "AWS::ApiGateway::Account", "AWS::Lambda::EventInvokeConfig",
    "AWS::CloudWatch::Alarm",
}
_SKIPPED = re.compile(r"Tried to parse (\S+) but it's not supported")


def _create_stack(template: dict[str, Any], parameters: dict[str, str]) -> dict[str, str]:
    """Create the stack in moto, with ``parameters`` beside the AMI; its resources, logical id -> physical id."""
    code = io.BytesIO()
    with zipfile.ZipFile(code, "w") as archive:  # the functions' code, where sam_expand.py names it
        archive.writestr("app.py", "")
    s3 = boto3.client("s3", region_name=REGION)
    s3.create_bucket(Bucket="bucket")
    s3.put_object(Bucket="bucket", Key="deployment.zip", Body=code.getvalue())
    cloudformation = boto3.client("cloudformation", region_name=REGION)
    with warnings.catch_warnings(record=True) as caught:  # moto parses the template again on reads
        warnings.simplefilter("always")
        cloudformation.create_stack(
            StackName=STACK, TemplateBody=_deployable(template),
            # An AMI makes the stack create the worker's role and launch template; none is launched.
            Parameters=[{"ParameterKey": key, "ParameterValue": value}
                        for key, value in {"WorkerAmiId": "ami-0123456789abcdef0", **parameters}.items()],
            Capabilities=["CAPABILITY_IAM", "CAPABILITY_AUTO_EXPAND"],
        )
        [stack] = cloudformation.describe_stacks(StackName=STACK)["Stacks"]
        summaries = cloudformation.list_stack_resources(StackName=STACK)["StackResourceSummaries"]
    assert stack["StackStatus"] == "CREATE_COMPLETE", stack.get("StackStatusReason")
    skipped = {m.group(1) for w in caught if (m := _SKIPPED.search(str(w.message)))}
    assert skipped <= SKIPPED_BY_MOTO, f"moto skips {skipped - SKIPPED_BY_MOTO} too: name it in SKIPPED_BY_MOTO and the docstring"
    # The SQS triggers, off once created: moto would run their functions (in Docker) at each message
    # sent; the rehearsal takes the callback function's jobs itself, as its trigger would.
    functions = boto3.client("lambda", region_name=REGION)
    for mapping in functions.list_event_source_mappings()["EventSourceMappings"]:
        functions.update_event_source_mapping(UUID=mapping["UUID"], Enabled=False)
    return {r["LogicalResourceId"]: r["PhysicalResourceId"] for r in summaries}


@pytest.fixture
def deploy(aws_credentials: None, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Any]:
    """``deploy(template, **parameters)``: the stack created in moto, and each tier's settings and
    credentials. IAM is enforced from then on, for the rest of the test."""
    monkeypatch.setenv("AWS_LAMBDA_FUNCTION_NAME", "APIHandler")  # the web tier's Lambda code path
    home = str(tmp_path / "home")
    with moto.mock_aws(), moto_iam.patched(), contextlib.ExitStack() as enforcement:
        aws.reset_clients()

        def create(template: dict[str, Any], **parameters: str) -> Deployed:
            resources = _create_stack(template, parameters)
            callback_env = _function_env(resources, "CallbackFunction")
            deployed = Deployed(
                web=Tier(load_image_settings({**_function_env(resources, "APIHandler"), "IRAAS_HOME": home}),
                         _role_session(resources, "ApiHandlerRole")),
                worker=Tier(load_image_settings({**_worker_env(resources), "IRAAS_HOME": home}),
                            _role_session(resources, "WorkerRole")),
                scaler=Tier(load_scaling_settings({**_function_env(resources, "Scale"), "IRAAS_HOME": home}),
                            _role_session(resources, "ScaleRole")),
                sweeper=Tier(load_image_settings({**_function_env(resources, "SweepReplies"), "IRAAS_HOME": home}),
                             _role_session(resources, "SweepRepliesRole")),
                callbacks=Tier(load_callback_settings({**callback_env, "IRAAS_HOME": home}),
                               _role_session(resources, "CallbackRole"), callback_env),
            )
            enforcement.enter_context(enable_iam_authentication())
            return deployed

        yield create
    aws.reset_clients()


def test_the_stack_creates_its_dashboard_and_the_alarms_encrypted_topic(aws_credentials, expanded):
    """What moto creates of the alarms: the topic under its own key, with no subscription unless an
    address is given, and the dashboard, whose charts name the queues the stack created."""
    with moto.mock_aws(), moto_iam.patched():
        resources = _create_stack(expanded, {})
        body = boto3.client("cloudwatch", region_name=REGION).get_dashboard(
            DashboardName=resources["Dashboard"])["DashboardBody"]
        sns = boto3.client("sns", region_name=REGION)
        topic = sns.get_topic_attributes(TopicArn=resources["AlarmTopic"])["Attributes"]
        subscriptions = sns.list_subscriptions()["Subscriptions"]
    assert resources["Dashboard"] == STACK
    charted = {m[3] for w in json.loads(body)["widgets"] if w["type"] == "metric"
               for m in w["properties"]["metrics"] if m[0] == "AWS/SQS"}
    queues = {url.rsplit("/", 1)[1] for name, url in resources.items()
              if name in ("RequestQueue", "RequestDeadLetterQueue", "CallbackDeadLetterQueue", "FaceRecognitionFailedEvents")}
    assert len(queues) == 4 and queues <= charted
    assert resources["AlarmTopic"].endswith(f":{STACK}-alarms")
    assert topic["KmsMasterKeyId"] == resources["AlarmTopicKey"]
    assert "AlarmEmailSubscription" not in resources and subscriptions == []


def web_tier(tier: Tier) -> ImageService:
    sqs = tier.client("sqs")
    return ImageService(tier.settings, s3=tier.client("s3"), sqs=sqs,
                        replies=InlineReplies(sqs, tier.settings.reply_queue_prefix))


def worker(tier: Tier, announce: bool = False) -> Worker:
    settings = tier.settings
    if announce:  # what an operator's IRAAS_WORKER_ANNOUNCE=1 in /etc/iraas/worker.env does
        settings = dataclasses.replace(settings, worker=dataclasses.replace(settings.worker, announce=True))
    return Worker(settings, TheClassifier(), s3=tier.client("s3"), sqs=tier.client("sqs"), worker_id="i-0rehearsal")


def an_upload(settings: ImageSettings) -> Any:
    """A photo-like JPEG too big to ride in its request message (over 64 KiB): the worker GETs it."""
    image = io.BytesIO()
    Image.frombytes("RGB", (400, 300), random.Random(7).randbytes(400 * 300 * 3)).save(image, "JPEG", quality=95)
    assert len(image.getvalue()) > CARRY_LIMIT
    return parse_upload(image.getvalue(), "image/jpeg", "tench.jpg", settings.limits)


# botocore's text of a refused call. moto answers an SQS refusal in XML where the JSON protocol
# expects JSON, so botocore reads its code as "403"; the AccessDenied is in the text that follows.
CALL_ERROR = re.compile(r"\((\w+)\) when calling the (\w+) operation(.*)", re.DOTALL)


@dataclass
class Trace:
    """What became of one image: its result as the web tier finally reads it, and the calls refused."""

    result: ImageResult | None = None
    answered: int = 0
    stats: dict[str, Any] = field(default_factory=dict)
    metrics: dict[str, Any] = field(default_factory=dict)
    heartbeats: list[str] = field(default_factory=list)  # workers the scaler sees, after the worker stopped
    denied: list[str] = field(default_factory=list)  # operation names, in the order refused

    def refused(self, error: str) -> bool:
        match = CALL_ERROR.search(error)
        if match is None or "AccessDenied" not in match.group(1) + match.group(3):
            return False
        self.denied.append(match.group(2))
        return True


def send_one_image(stack: Deployed, caplog: pytest.LogCaptureFixture, announce: bool = False,
                   callback: str | None = None) -> Trace:
    """POST /v1/images with an idempotency key and a wait (and a ``callback`` URL); a worker's
    heartbeat, one poll and its stop; the wait; then GET /v1/images/{id}, /v1/stats and /v1/metrics:
    each tier's calls signed as its role. A refused call the code does not absorb ends the flow; one
    it absorbs (the worker logs it and leaves the message) is read from its log record."""
    trace = Trace()
    web = web_tier(stack.web)
    try:
        try:
            # An idempotency key: the web tier also looks for an earlier upload of the same request.
            submission = web.accept(an_upload(stack.web.settings), "anonymous", new_id(), expect_answer=True,
                                    callback=callback)
            consumer = worker(stack.worker, announce)
            heartbeat = consumer.heartbeat()
            heartbeat.beat()
            trace.answered = consumer.poll_once(wait_s=0).answered
            heartbeat.stop()  # publishes the worker's metrics, removes its heartbeat
            web.wait(submission, timeout_s=1)
            trace.result = web.find("anonymous", submission.request.id)
            trace.stats = web.stats()
            trace.metrics = web.metrics()
            scaler = stack.scaler
            trace.heartbeats = sorted(S3StatusStore(scaler.client("s3"), scaler.settings.status_bucket).heartbeats())
        except ClientError as error:
            if not trace.refused(str(error)):
                raise
    finally:
        web.replies.close()
    for record in caplog.records:
        trace.refused(str(getattr(record, "error", "")))
    return trace


def test_an_image_goes_through_the_web_tier_and_a_worker_each_with_its_own_role(deploy, expanded, caplog):
    trace = send_one_image(deploy(expanded), caplog)
    assert trace.denied == []
    assert trace.answered == 1
    assert trace.result is not None and (trace.result.status, trace.result.label) == ("done", "tench")
    assert trace.stats["queue"] == {"visible": 0, "in_flight": 0}
    assert (trace.metrics["workers_reporting"], trace.metrics["last_minute"]["answered"]) == (1, 1)
    assert trace.heartbeats == []  # the stopped worker removed its own


def test_without_clear_own_heartbeat_a_stopped_worker_stays_in_the_scalers_view(deploy, expanded, caplog):
    """The heartbeat's removal is best effort (a failure is not even logged): what shows is the
    heartbeat the scaler still reads."""
    trace = send_one_image(deploy(without_statement(expanded, "WorkerRole", "ClearOwnHeartbeat")), caplog)
    assert (trace.denied, trace.answered, trace.heartbeats) == ([], 1, ["i-0rehearsal"])


# Each statement the image's way needs, and the call that is refused without it.
NEEDED = [
    ("ApiHandlerRole", "StoreUploads", "PutObject"),
    ("ApiHandlerRole", "FindOneUpload", "ListObjectsV2"),
    ("ApiHandlerRole", "OwnReplyQueue", "CreateQueue"),
    ("ApiHandlerRole", "QueueRequests", "SendMessage"),
    ("ApiHandlerRole", "ReadResultsAndTheStatusShown", "GetObject"),
    ("ApiHandlerRole", "QueueDepth", "GetQueueAttributes"),
    ("ApiHandlerRole", "MissingResultsAre404Not403", "ListObjectsV2"),  # the metrics' listing
    ("WorkerRole", "TakeRequests", "GetQueueAttributes"),
    ("WorkerRole", "WriteUnreadableMessagesAndHeartbeats", "PutObject"),
    ("WorkerRole", "ReadImages", "GetObject"),
    ("WorkerRole", "WriteFirstAnswersOnly", "PutObject"),
    ("WorkerRole", "ReplyToTheWaitingWebTier", "SendMessageBatch"),
    ("WorkerRole", "Announce", "SendMessageBatch"),  # with announcements turned on (below)
]


@pytest.mark.parametrize(("role", "sid", "operation"), NEEDED, ids=[f"{r}-{s}" for r, s, _ in NEEDED])
def test_without_a_statement_it_needs_a_role_is_refused_that_call(deploy, expanded, caplog, role, sid, operation):
    trace = send_one_image(deploy(without_statement(expanded, role, sid)), caplog, announce=sid == "Announce")
    assert trace.denied[:1] == [operation]


def test_a_worker_as_the_stack_starts_it_announces_nothing(deploy, expanded, caplog):
    """On AWS nobody reads the response queue: the worker the launch template starts does not send
    there (an operator may turn it on: the Announce statement lets it)."""
    trace = send_one_image(deploy(without_statement(expanded, "WorkerRole", "Announce")), caplog)
    assert (trace.denied, trace.answered) == ([], 1)


# --- Completion callbacks: the worker queues the job, the callback function settles it --------

CALLBACK_URL = "https://receiver.example/hook"
PUBLIC_ADDRESS, PRIVATE_ADDRESS = "93.184.216.34", "10.0.0.7"


def resolving_to(address: str) -> Any:
    """DNS (socket.getaddrinfo's shape) that answers every host with ``address``."""
    return lambda host, port, **_: [(socket.AF_INET, socket.SOCK_STREAM, 6, "", (address, port))]


def receiver_down(*_: Any) -> Attempt:
    return Attempt(False, "503 Service Unavailable")


@dataclass
class Settled:
    """What the callback function's runs did: their counts, the secret it read, the calls refused."""

    counts: list[dict[str, int]] = field(default_factory=list)
    secret: bytes = b""
    trace: Trace = field(default_factory=Trace)


def run_callback_function(stack: Deployed, settled: Settled, address: str) -> None:
    """One invocation as Lambda's SQS trigger makes it, signed as CallbackRole: its cold start reads
    the webhook secret; the trigger receives a batch; each job is POSTed (the receiver answers 503)
    to ``address`` and settled (sent back to retry, or given up on the dead-letter queue); the batch's
    settled messages are deleted. Retries are due at once here (no DelaySeconds)."""
    tier = stack.callbacks
    sqs = tier.client("sqs")
    settings: CallbackSettings = dataclasses.replace(tier.settings, retry_base_s=0)
    try:
        settled.secret = load_secret(tier.env, secrets_client=lambda: tier.client("secretsmanager"))
        sender = CallbackSender(settings, settled.secret, sqs=sqs, resolver=resolving_to(address), post=receiver_down)
        messages = sqs.receive_message(QueueUrl=settings.queue_url, MaxNumberOfMessages=10).get("Messages", [])
        outcome = sender.handle([(m["MessageId"], m["Body"]) for m in messages])
        settled.counts.append({k: v for k, v in outcome.counts.items() if v})
        for message in messages:
            if message["MessageId"] not in outcome.unsettled:
                sqs.delete_message(QueueUrl=settings.queue_url, ReceiptHandle=message["ReceiptHandle"])
    except (ClientError, ConfigError) as error:  # ConfigError: the secret could not be read, and why
        if not settled.trace.refused(str(error)):
            raise


def send_one_image_with_a_callback(stack: Deployed, caplog: pytest.LogCaptureFixture) -> Settled:
    """The image's way with a callback, then the callback function twice: the receiver is down (the
    job goes back to the queue), then its address is a private one (the job is given up on)."""
    settled = Settled(trace=send_one_image(stack, caplog, callback=CALLBACK_URL))
    caplog.clear()  # the image's way has been read; what follows is the callback function's
    run_callback_function(stack, settled, PUBLIC_ADDRESS)
    run_callback_function(stack, settled, PRIVATE_ADDRESS)
    for record in caplog.records:
        settled.trace.refused(str(getattr(record, "error", "")))
    return settled


def test_an_answers_callback_is_queued_by_the_worker_and_settled_by_the_callback_function_with_its_role(
        deploy, expanded, caplog):
    stack = deploy(expanded)
    settled = send_one_image_with_a_callback(stack, caplog)
    assert settled.trace.denied == [] and settled.trace.answered == 1
    assert settled.counts == [{"retried": 1}, {"failed": 1}]
    # The secret CloudFormation generated, read by its ARN with the function's role.
    assert len(settled.secret) == 48 and settled.secret.isalnum()
    # /v1/stats, as the web tier's role reads it: nothing pending, one delivery given up on.
    assert web_tier(stack.web).stats()["callbacks"] == {"pending": 0, "failed": 1}


def test_only_the_callback_function_may_read_the_webhook_secret(deploy, expanded):
    stack = deploy(expanded)
    arn = stack.callbacks.env["IRAAS_WEBHOOK_SECRET_ARN"]
    assert arn.startswith("arn:aws:secretsmanager:") and stack.web.settings.callbacks_enabled  # named to the web tier too
    value = stack.callbacks.client("secretsmanager").get_secret_value(SecretId=arn)["SecretString"]
    assert len(value) == 48
    for tier in (stack.web, stack.worker, stack.scaler, stack.sweeper):  # the web tier only sees it is set
        with pytest.raises(ClientError) as error:
            tier.client("secretsmanager").get_secret_value(SecretId=arn)
        assert Trace().refused(str(error.value))


# Each statement the callback's way needs, and the call that is refused without it.
NEEDED_FOR_CALLBACKS = [
    ("WorkerRole", "QueueCallbacks", "SendMessageBatch"),
    ("CallbackRole", "ReadTheWebhookSecret", "GetSecretValue"),
    ("CallbackRole", "TakeJobs", "ReceiveMessage"),
    ("CallbackRole", "RetryLater", "SendMessage"),
    ("CallbackRole", "GiveUp", "SendMessage"),
]


@pytest.mark.parametrize(("role", "sid", "operation"), NEEDED_FOR_CALLBACKS,
                         ids=[f"{r}-{s}" for r, s, _ in NEEDED_FOR_CALLBACKS])
def test_without_a_statement_the_callbacks_need_a_role_is_refused_that_call(deploy, expanded, caplog, role, sid, operation):
    settled = send_one_image_with_a_callback(deploy(without_statement(expanded, role, sid)), caplog)
    assert settled.trace.denied[:1] == [operation]


# The statements of the three roles that neither the image's way nor the callback's uses, and why.
NOT_ON_THIS_WAY = {
    ("ApiHandlerRole", "Logs"),  # Lambda's runtime writes the logs; moto checks no log group ARNs
    ("ApiHandlerRole", "UploadVideos"),  # the classroom routes, from here on
    ("ApiHandlerRole", "ReadAttendanceCsvs"),
    ("ApiHandlerRole", "MissingCsvsAre404Not403"),
    ("ApiHandlerRole", "ImportStudentRecordsNotFaces"),
    ("ApiHandlerRole", "ListFindAndRemoveStudents"),
    ("WorkerRole", "ClearOwnHeartbeat"),  # its own test above
    ("CallbackRole", "Logs"),
    ("CallbackRole", "DecryptTheWebhookSecret"),  # moto's Secrets Manager does not encrypt with KMS
}


def test_every_statement_of_the_three_roles_is_rehearsed_or_named_as_not_on_this_way(expanded):
    rehearsed = {(role, sid) for role, sid, _ in NEEDED + NEEDED_FOR_CALLBACKS}
    for role in ("ApiHandlerRole", "WorkerRole", "CallbackRole"):
        sids = {s.get("Sid") for p in expanded["Resources"][role]["Properties"]["Policies"]
                for s in p["PolicyDocument"]["Statement"]}
        assert {(role, sid) for sid in sids} == {k for k in rehearsed | NOT_ON_THIS_WAY if k[0] == role}


def test_each_tier_is_refused_the_other_tiers_calls(deploy, expanded):
    stack = deploy(expanded)
    web, work = stack.web, stack.worker
    refused = {
        "the web tier takes a request": lambda: web.client("sqs").receive_message(QueueUrl=web.settings.request_queue_url),
        "the web tier writes a result": lambda: web.client("s3").put_object(
            Bucket=web.settings.image_output_bucket, Key=f"results/x.jpg/{new_id()}.json", Body=b"{}"),
        "the worker stores an upload": lambda: work.client("s3").put_object(
            Bucket=work.settings.image_input_bucket, Key=f"inputs/anonymous/{new_id()}/x.jpg", Body=b"x"),
        "the worker queues a request": lambda: work.client("sqs").send_message(
            QueueUrl=work.settings.request_queue_url, MessageBody="{}"),
        "the worker reads a result": lambda: work.client("s3").get_object(
            Bucket=work.settings.image_output_bucket, Key=f"results/x.jpg/{new_id()}.json"),
        "the worker makes a reply queue": lambda: work.client("sqs").create_queue(
            QueueName=work.settings.reply_queue_prefix + "x"),
        "the web tier queues a callback": lambda: web.client("sqs").send_message(
            QueueUrl=web.settings.callback_queue_url, MessageBody="{}"),
        "the worker gives a callback up": lambda: work.client("sqs").send_message(
            QueueUrl=web.settings.callback_dead_letter_queue_url, MessageBody="{}"),
        "the callback function queues a request": lambda: stack.callbacks.client("sqs").send_message(
            QueueUrl=web.settings.request_queue_url, MessageBody="{}"),
        "the callback function reads a result": lambda: stack.callbacks.client("s3").get_object(
            Bucket=web.settings.image_output_bucket, Key=f"results/x.jpg/{new_id()}.json"),
    }
    for what, call in refused.items():
        with pytest.raises(ClientError) as error:
            call()
        assert Trace().refused(str(error.value)), what


def test_only_the_sweeper_deletes_the_reply_queues_of_web_processes_that_are_gone(deploy, expanded):
    stack = deploy(expanded)
    prefix = stack.web.settings.reply_queue_prefix
    now = time.time()
    gone = replies.create_reply_queue(stack.web.client("sqs"), prefix, now=now - 3600)  # not refreshed for an hour
    alive = replies.create_reply_queue(stack.web.client("sqs"), prefix, now=now)
    with pytest.raises(ClientError) as scaler_refused:  # the scaler has its own schedule and role now
        replies.sweep_idle(stack.scaler.client("sqs"), prefix, now=now)
    assert Trace().refused(str(scaler_refused.value))
    assert replies.sweep_idle(stack.sweeper.client("sqs"), prefix, now=now) == [gone]
    assert stack.sweeper.client("sqs").list_queues(QueueNamePrefix=prefix)["QueueUrls"] == [alive]


def test_a_worker_fetches_the_model_the_stack_names_with_its_own_role_and_nothing_beside_it(deploy, expanded, tmp_path):
    """WorkerModelS3Uri: the worker's role may read that model's files (WorkerModelPolicy), as `iraas
    model fetch` reads them at the worker's start, and no other object of their bucket."""
    import hashlib

    from iraas.errors import ConfigError
    from iraas.images.model.fetch import fetch_model

    network, uri = b"an ONNX graph", "s3://models-of-ours/team/colours.onnx"
    s3 = boto3.client("s3", region_name=REGION)
    s3.create_bucket(Bucket="models-of-ours")
    for name, body in {"colours.onnx": network, "colours.labels.txt": b"sky\nfern\npoppy\n",
                       "other.onnx": b"another team's model"}.items():
        s3.put_object(Bucket="models-of-ours", Key=f"team/{name}", Body=body)
    sha256 = hashlib.sha256(network).hexdigest()

    stack = deploy(expanded, WorkerModelS3Uri=uri, WorkerModelSha256=sha256)
    worker_s3 = stack.worker.client("s3")
    path = fetch_model(worker_s3, uri, sha256, tmp_path / "own-model")  # no JSON: S3 says AccessDenied, read as none
    assert path.read_bytes() == network and (tmp_path / "own-model/colours.labels.txt").is_file()
    with pytest.raises(ClientError) as other:
        worker_s3.get_object(Bucket="models-of-ours", Key="team/other.onnx")
    assert Trace().refused(str(other.value))
    with pytest.raises(ConfigError, match="may not read it"):  # another model than the stack names
        fetch_model(worker_s3, "s3://models-of-ours/team/other.onnx", sha256, tmp_path / "other")


def test_without_a_model_named_the_worker_may_read_none(deploy, expanded, tmp_path):
    from iraas.errors import ConfigError
    from iraas.images.model.fetch import fetch_model

    s3 = boto3.client("s3", region_name=REGION)
    s3.create_bucket(Bucket="models-of-ours")
    s3.put_object(Bucket="models-of-ours", Key="team/colours.onnx", Body=b"an ONNX graph")
    stack = deploy(expanded)
    with pytest.raises(ConfigError, match="may not read it"):
        fetch_model(stack.worker.client("s3"), "s3://models-of-ours/team/colours.onnx", "0" * 64, tmp_path)
