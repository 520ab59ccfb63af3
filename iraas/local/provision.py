"""Create template.yaml's resources on an AWS-compatible endpoint (moto) as CloudFormation would.

Same properties, dependency order, generated names; idempotent for a given stack name. Created:
AWS::S3::Bucket, AWS::SQS::Queue, AWS::SQS::QueuePolicy, AWS::DynamoDB::Table; an
AWS::Serverless::Function's S3 events become an S3 -> SQS notification to a local-only queue, which
``iraas up``'s runner polls to invoke the function's handler with the real S3 event. Every other type
(Serverless, IAM, EC2, Lambda, S3 bucket policies, ...) is skipped with a debug line; a created
resource that refers to a skipped one is an error.
"""

from __future__ import annotations

import hashlib
import json
import logging
import re
from dataclasses import dataclass
from functools import cached_property
from typing import Any, Callable

import boto3
from botocore.client import BaseClient
from botocore.config import Config
from botocore.exceptions import ClientError

from iraas.local.template import Resolver, TemplateError, resource_order

log = logging.getLogger(__name__)

# Longest physical name each service accepts.
S3_NAME_MAX, SQS_NAME_MAX, DYNAMODB_NAME_MAX = 63, 80, 255


def physical_name(stack_name: str, logical_id: str, max_len: int, end: str = "") -> str:
    """``<stack>-<logicalid>-<hash>``: lowercase, valid for S3, SQS and DynamoDB.

    The suffix is a hash of stack and logical id, not random, so that a second run finds the
    resources of the first; it also keeps truncated names distinct.
    """
    suffix = hashlib.sha256(f"{stack_name}/{logical_id}".encode()).hexdigest()[:8]
    base = re.sub(r"[^a-z0-9]+", "-", f"{stack_name}-{logical_id}".lower()).strip("-")
    base = base[: max_len - len(suffix) - len(end) - 1].rstrip("-")
    return f"{base}-{suffix}{end}"


class _Clients:
    """boto3 clients for one endpoint, made on first use."""

    def __init__(self, session: boto3.Session, endpoint_url: str | None, region: str) -> None:
        self._session, self._endpoint_url, self._region = session, endpoint_url, region

    def _client(self, service: str, config: Config | None = None) -> BaseClient:
        return self._session.client(
            service, endpoint_url=self._endpoint_url, region_name=self._region, config=config
        )

    @cached_property
    def s3(self) -> BaseClient:
        # Path-style: `bucket.127.0.0.1` does not resolve; AWS itself accepts both styles.
        return self._client("s3", Config(s3={"addressing_style": "path"}))

    @cached_property
    def sqs(self) -> BaseClient:
        return self._client("sqs")

    @cached_property
    def dynamodb(self) -> BaseClient:
        return self._client("dynamodb")

    @cached_property
    def sts(self) -> BaseClient:
        return self._client("sts")


@dataclass
class _Context:
    clients: _Clients
    resolver: Resolver
    stack_name: str
    region: str

    def prop(self, props: dict[str, Any], name: str, default: Any = None) -> Any:
        """A property, its intrinsic functions evaluated (only the properties a handler uses)."""
        return self.resolver.resolve(props[name]) if name in props else default


# A handler creates (or finds) one resource and returns what Ref gives (None: nothing to record)
# and its Fn::GetAtt attributes.
Handler = Callable[[_Context, str, dict[str, Any]], tuple[str | None, dict[str, str]]]


def _warn_unapplied(kind: str, logical_id: str, props: dict[str, Any], applied: set[str]) -> None:
    for name in sorted(set(props) - applied):
        log.warning("%s %s: property %s is not applied locally", kind, logical_id, name)


def _tags(tags: list[dict[str, str]] | None) -> list[dict[str, str]]:
    return [{"Key": str(t["Key"]), "Value": str(t["Value"])} for t in tags or []]


def _error_code(exc: ClientError) -> str:
    return str(exc.response.get("Error", {}).get("Code", ""))


# --- S3 -------------------------------------------------------------------------------------------

_BUCKET_PROPS = {
    "BucketName", "BucketEncryption", "PublicAccessBlockConfiguration", "OwnershipControls",
    "VersioningConfiguration", "LifecycleConfiguration", "NotificationConfiguration", "Tags",
}


def _lifecycle_rule(rule: dict[str, Any]) -> dict[str, Any]:
    """A CloudFormation lifecycle rule in the S3 API's shape (the subset the templates use)."""
    supported = {"Id", "Status", "Prefix", "ExpirationInDays", "AbortIncompleteMultipartUpload",
                 "NoncurrentVersionExpirationInDays"}
    unknown = set(rule) - supported
    if unknown:
        raise TemplateError(f"lifecycle rule keys not supported locally: {sorted(unknown)}")
    out: dict[str, Any] = {"Status": rule["Status"], "Filter": {"Prefix": rule.get("Prefix", "")}}
    if "Id" in rule:
        out["ID"] = rule["Id"]
    if "ExpirationInDays" in rule:
        out["Expiration"] = {"Days": int(rule["ExpirationInDays"])}
    if "NoncurrentVersionExpirationInDays" in rule:
        days = int(rule["NoncurrentVersionExpirationInDays"])
        out["NoncurrentVersionExpiration"] = {"NoncurrentDays": days}
    if "AbortIncompleteMultipartUpload" in rule:
        days = int(rule["AbortIncompleteMultipartUpload"]["DaysAfterInitiation"])
        out["AbortIncompleteMultipartUpload"] = {"DaysAfterInitiation": days}
    return out


def _queue_notification(config: dict[str, Any]) -> dict[str, Any]:
    out: dict[str, Any] = {"QueueArn": config["Queue"], "Events": [config["Event"]]}
    rules = config.get("Filter", {}).get("S3Key", {}).get("Rules")
    if rules:
        out["Filter"] = {"Key": {"FilterRules": rules}}
    return out


def _bucket(ctx: _Context, logical_id: str, props: dict[str, Any]) -> tuple[str, dict[str, str]]:
    s3 = ctx.clients.s3
    name = ctx.prop(props, "BucketName") or physical_name(ctx.stack_name, logical_id, S3_NAME_MAX)
    try:
        s3.head_bucket(Bucket=name)
        created = False
    except ClientError as exc:
        if _error_code(exc) not in ("404", "NoSuchBucket"):
            raise
        extra = {}
        if ctx.region != "us-east-1":  # us-east-1 rejects an explicit LocationConstraint
            extra["CreateBucketConfiguration"] = {"LocationConstraint": ctx.region}
        s3.create_bucket(Bucket=name, **extra)
        created = True

    # The put_* calls replace the whole setting, so re-applying them on a second run is safe.
    encryption = ctx.prop(props, "BucketEncryption")
    if encryption:
        rules = [
            {"ApplyServerSideEncryptionByDefault": r["ServerSideEncryptionByDefault"]}
            | ({"BucketKeyEnabled": r["BucketKeyEnabled"]} if "BucketKeyEnabled" in r else {})
            for r in encryption["ServerSideEncryptionConfiguration"]
        ]
        s3.put_bucket_encryption(Bucket=name, ServerSideEncryptionConfiguration={"Rules": rules})
    public_access = ctx.prop(props, "PublicAccessBlockConfiguration")
    if public_access:
        s3.put_public_access_block(Bucket=name, PublicAccessBlockConfiguration=public_access)
    ownership = ctx.prop(props, "OwnershipControls")
    if ownership:
        s3.put_bucket_ownership_controls(Bucket=name, OwnershipControls=ownership)
    versioning = ctx.prop(props, "VersioningConfiguration")
    if versioning:
        s3.put_bucket_versioning(Bucket=name, VersioningConfiguration=versioning)
    lifecycle = ctx.prop(props, "LifecycleConfiguration")
    if lifecycle:
        rules = [_lifecycle_rule(rule) for rule in lifecycle["Rules"]]
        s3.put_bucket_lifecycle_configuration(Bucket=name, LifecycleConfiguration={"Rules": rules})
    notifications = props.get("NotificationConfiguration") or {}
    for other in sorted(set(notifications) - {"QueueConfigurations"}):
        log.warning("S3 bucket %s: %s are not applied locally", logical_id, other)
    if notifications.get("QueueConfigurations"):
        # Only the queue targets are resolved: Lambda/SNS targets do not exist locally.
        queues = ctx.resolver.resolve(notifications["QueueConfigurations"])
        config = {"QueueConfigurations": [_queue_notification(q) for q in queues]}
        s3.put_bucket_notification_configuration(Bucket=name, NotificationConfiguration=config)
    tags = _tags(ctx.prop(props, "Tags"))
    if tags:
        s3.put_bucket_tagging(Bucket=name, Tagging={"TagSet": tags})
    _warn_unapplied("S3 bucket", logical_id, props, _BUCKET_PROPS)

    log.info("%s S3 bucket %s: %s", "created" if created else "reused", logical_id, name)
    return name, {
        "Arn": f"arn:aws:s3:::{name}",
        "DomainName": f"{name}.s3.amazonaws.com",
        "RegionalDomainName": f"{name}.s3.{ctx.region}.amazonaws.com",
    }


# --- SQS ------------------------------------------------------------------------------------------

# CloudFormation property names that are also SQS attribute names.
_QUEUE_ATTRIBUTES = {
    "ContentBasedDeduplication", "DeduplicationScope", "DelaySeconds", "FifoQueue",
    "FifoThroughputLimit", "KmsDataKeyReusePeriodSeconds", "KmsMasterKeyId", "MaximumMessageSize",
    "MessageRetentionPeriod", "ReceiveMessageWaitTimeSeconds", "RedriveAllowPolicy",
    "RedrivePolicy", "SqsManagedSseEnabled", "VisibilityTimeout",
}


# The query protocol and the JSON protocol name the same error differently.
_NO_SUCH_QUEUE = {"AWS.SimpleQueueService.NonExistentQueue", "QueueDoesNotExist"}


def _attribute_string(value: Any) -> str:
    """SQS attributes are strings: booleans lowercase, policies JSON."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (dict, list)):
        return json.dumps(value)
    return str(value)


def _queue(ctx: _Context, logical_id: str, props: dict[str, Any]) -> tuple[str, dict[str, str]]:
    sqs = ctx.clients.sqs
    given = sorted(_QUEUE_ATTRIBUTES & set(props))
    attributes = {key: _attribute_string(ctx.prop(props, key)) for key in given}
    fifo = attributes.get("FifoQueue") == "true"
    name = ctx.prop(props, "QueueName") or physical_name(
        ctx.stack_name, logical_id, SQS_NAME_MAX, ".fifo" if fifo else ""
    )
    try:
        url = sqs.get_queue_url(QueueName=name)["QueueUrl"]
    except ClientError as exc:
        if _error_code(exc) not in _NO_SUCH_QUEUE:
            raise
        tags = {t["Key"]: t["Value"] for t in _tags(ctx.prop(props, "Tags"))}
        url = sqs.create_queue(QueueName=name, Attributes=attributes, tags=tags)["QueueUrl"]
        log.info("created SQS queue %s: %s", logical_id, url)
    else:
        # Converge an existing queue; FifoQueue cannot change after creation.
        settable = {k: v for k, v in attributes.items() if k != "FifoQueue"}
        if settable:
            sqs.set_queue_attributes(QueueUrl=url, Attributes=settable)
        log.info("reused SQS queue %s: %s", logical_id, url)
    _warn_unapplied("SQS queue", logical_id, props, _QUEUE_ATTRIBUTES | {"QueueName", "Tags"})
    arn = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["QueueArn"])["Attributes"]
    return url, {"Arn": arn["QueueArn"], "QueueName": name, "QueueUrl": url}


def _queue_policy(ctx: _Context, logical_id: str, props: dict[str, Any]) -> tuple[None, dict]:
    document = json.dumps(ctx.prop(props, "PolicyDocument"))
    for url in ctx.prop(props, "Queues"):
        ctx.clients.sqs.set_queue_attributes(QueueUrl=url, Attributes={"Policy": document})
    log.info("applied SQS queue policy %s", logical_id)
    return None, {}


# --- DynamoDB -------------------------------------------------------------------------------------

_TABLE_PROPS = {
    "TableName", "KeySchema", "AttributeDefinitions", "BillingMode", "ProvisionedThroughput",
    "GlobalSecondaryIndexes", "LocalSecondaryIndexes", "StreamSpecification", "SSESpecification",
    "TimeToLiveSpecification", "Tags",
}


def _throughput(value: dict[str, Any]) -> dict[str, int]:
    return {key: int(units) for key, units in value.items()}


def _table_request(name: str, ctx: _Context, props: dict[str, Any]) -> dict[str, Any]:
    """create_table's arguments from the CloudFormation properties."""
    request: dict[str, Any] = {
        "TableName": name,
        "KeySchema": ctx.prop(props, "KeySchema"),
        "AttributeDefinitions": ctx.prop(props, "AttributeDefinitions"),
        "BillingMode": ctx.prop(props, "BillingMode", "PROVISIONED"),  # CloudFormation's default
    }
    if "ProvisionedThroughput" in props:
        request["ProvisionedThroughput"] = _throughput(ctx.prop(props, "ProvisionedThroughput"))
    for key in ("GlobalSecondaryIndexes", "LocalSecondaryIndexes"):
        indexes = ctx.prop(props, key)
        if indexes:
            for index in indexes:
                if "ProvisionedThroughput" in index:
                    index["ProvisionedThroughput"] = _throughput(index["ProvisionedThroughput"])
            request[key] = indexes
    stream = ctx.prop(props, "StreamSpecification")
    if stream:
        request["StreamSpecification"] = {
            "StreamEnabled": True, "StreamViewType": stream["StreamViewType"]
        }
    sse = ctx.prop(props, "SSESpecification")
    if sse:
        request["SSESpecification"] = {"Enabled": bool(sse.get("SSEEnabled"))} | {
            k: v for k, v in sse.items() if k in ("SSEType", "KMSMasterKeyId")
        }
    tags = _tags(ctx.prop(props, "Tags"))
    if tags:
        request["Tags"] = tags
    return request


def _table(ctx: _Context, logical_id: str, props: dict[str, Any]) -> tuple[str, dict[str, str]]:
    dynamodb = ctx.clients.dynamodb
    name = ctx.prop(props, "TableName") or physical_name(
        ctx.stack_name, logical_id, DYNAMODB_NAME_MAX
    )
    try:
        table = dynamodb.describe_table(TableName=name)["Table"]
        log.info("reused DynamoDB table %s: %s", logical_id, name)
    except ClientError as exc:
        if _error_code(exc) != "ResourceNotFoundException":
            raise
        table = dynamodb.create_table(**_table_request(name, ctx, props))["TableDescription"]
        dynamodb.get_waiter("table_exists").wait(
            TableName=name, WaiterConfig={"Delay": 1, "MaxAttempts": 60}
        )
        ttl = ctx.prop(props, "TimeToLiveSpecification")
        if ttl:  # only on creation: enabling an enabled TTL again is an error in AWS
            dynamodb.update_time_to_live(TableName=name, TimeToLiveSpecification=ttl)
        log.info("created DynamoDB table %s: %s", logical_id, name)
    _warn_unapplied("DynamoDB table", logical_id, props, _TABLE_PROPS)
    attributes = {"Arn": table["TableArn"]}
    if table.get("LatestStreamArn"):
        attributes["StreamArn"] = table["LatestStreamArn"]
    return name, attributes


# --- Lambda functions' S3 events -----------------------------------------------------------------


def event_queue_id(function_logical_id: str) -> str:
    """The stack.json entry of the local queue that carries a function's S3 events."""
    return f"{function_logical_id}.EventQueue"


def _function(ctx: _Context, logical_id: str, props: dict[str, Any]) -> tuple[None, dict[str, str]]:
    """The function itself does not exist locally; its S3 events are routed to a queue instead.

    SAM turns an S3 event into the bucket's NotificationConfiguration plus a Lambda permission. Here
    the bucket notifies a queue (same events, same filter), and the runner started by ``iraas up``
    hands each message's S3 event to the handler, as the Lambda service would.
    """
    events = [e.get("Properties", {}) for e in (props.get("Events") or {}).values() if e.get("Type") == "S3"]
    if not events:
        log.debug("skipped %s (AWS::Serverless::Function): without S3 events it is not run locally", logical_id)
        return None, {}
    sqs, s3 = ctx.clients.sqs, ctx.clients.s3
    name = physical_name(ctx.stack_name, f"{logical_id}Events", SQS_NAME_MAX)
    # A message stays hidden while the handler runs, as long as the function's timeout.
    attributes = {"VisibilityTimeout": str(int(ctx.prop(props, "Timeout", 300)))}
    try:
        url = sqs.get_queue_url(QueueName=name)["QueueUrl"]
        sqs.set_queue_attributes(QueueUrl=url, Attributes=attributes)
    except ClientError as exc:
        if _error_code(exc) not in _NO_SUCH_QUEUE:
            raise
        url = sqs.create_queue(QueueName=name, Attributes=attributes)["QueueUrl"]
    arn = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
    by_bucket: dict[str, list[dict[str, Any]]] = {}
    for event in events:
        bucket = ctx.resolver.resolve(event["Bucket"])
        kinds = ctx.resolver.resolve(event["Events"])
        for kind in [kinds] if isinstance(kinds, str) else kinds:
            config = {"Queue": arn, "Event": kind, "Filter": ctx.resolver.resolve(event.get("Filter", {}))}
            by_bucket.setdefault(bucket, []).append(_queue_notification(config))
    for bucket, configs in by_bucket.items():
        current = s3.get_bucket_notification_configuration(Bucket=bucket)
        kept = [q for q in current.get("QueueConfigurations", []) if q.get("QueueArn") != arn]
        s3.put_bucket_notification_configuration(
            Bucket=bucket, NotificationConfiguration={"QueueConfigurations": kept + configs}
        )
    ctx.resolver.physical[event_queue_id(logical_id)] = url
    log.info("routed %s's S3 events to local queue %s", logical_id, url)
    return None, {}


# Types skipped for a reason beyond "moto cannot run it"; the reason goes in the debug line.
SKIPPED_BECAUSE = {
    # moto (>= 5.0, getmoto/moto#5820) enforces Deny statements of a bucket policy on object
    # requests without evaluating their Condition: the TLS-only policy would refuse every
    # GetObject/PutObject, and the local endpoint is plain HTTP anyway.
    "AWS::S3::BucketPolicy": "moto would enforce its Deny statements ignoring their Condition",
}

HANDLERS: dict[str, Handler] = {
    "AWS::S3::Bucket": _bucket,
    "AWS::SQS::Queue": _queue,
    "AWS::SQS::QueuePolicy": _queue_policy,
    "AWS::DynamoDB::Table": _table,
    "AWS::Serverless::Function": _function,
}


def provision(
    template: dict[str, Any],
    session: boto3.Session | None = None,
    endpoint_url: str | None = None,
    region: str = "us-east-1",
    stack_name: str = "iraas",
    parameters: dict[str, Any] | None = None,
) -> dict[str, str]:
    """Create the template's resources; return logical id -> what ``Ref`` gives.

    That is the bucket name, the queue URL, the table name. ``endpoint_url=None`` talks to the
    default AWS endpoints, which is what moto's in-process ``mock_aws`` intercepts.
    """
    session = session or boto3.Session()
    clients = _Clients(session, endpoint_url, region)
    account_id = clients.sts.get_caller_identity()["Account"]
    resolver = Resolver(
        template, region=region, stack_name=stack_name, account_id=account_id, parameters=parameters
    )
    ctx = _Context(clients, resolver, stack_name, region)
    resources = template["Resources"]
    for logical_id in resource_order(template):
        kind = resources[logical_id].get("Type", "")
        handler = HANDLERS.get(kind)
        if handler is None:
            why = SKIPPED_BECAUSE.get(kind, "not created on the local endpoint")
            log.debug("skipped %s (%s): %s", logical_id, kind, why)
            continue
        if not resolver.included(resources[logical_id]):
            log.debug("skipped %s: its condition is false", logical_id)
            continue
        properties = resources[logical_id].get("Properties", {})
        try:
            physical, attributes = handler(ctx, logical_id, properties)
        except TemplateError as exc:
            raise TemplateError(f"{logical_id}: {exc}") from None
        if physical is not None:
            resolver.physical[logical_id] = physical
        resolver.attributes[logical_id] = attributes
    return dict(resolver.physical)
