"""AWS::SQS::Queue and AWS::SQS::QueuePolicy."""

from __future__ import annotations

import json
from typing import Any

from botocore.exceptions import ClientError

from iraas.aws import error_code
from iraas.local.provision.context import Context, log, tag_list, warn_unapplied
from iraas.local.provision.naming import SQS_NAME_MAX, physical_name
from iraas.queues import NO_SUCH_QUEUE

# CloudFormation property names that are also SQS attribute names.
_QUEUE_ATTRIBUTES = {
    "ContentBasedDeduplication", "DeduplicationScope", "DelaySeconds", "FifoQueue",
    "FifoThroughputLimit", "KmsDataKeyReusePeriodSeconds", "KmsMasterKeyId", "MaximumMessageSize",
    "MessageRetentionPeriod", "ReceiveMessageWaitTimeSeconds", "RedriveAllowPolicy",
    "RedrivePolicy", "SqsManagedSseEnabled", "VisibilityTimeout",
}


def _attribute_string(value: Any) -> str:
    """SQS attributes are strings: booleans lowercase, policies JSON."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (dict, list)):
        return json.dumps(value)
    return str(value)


def queue(ctx: Context, logical_id: str, props: dict[str, Any]) -> tuple[str, dict[str, str]]:
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
        if error_code(exc) not in NO_SUCH_QUEUE:
            raise
        tags = {t["Key"]: t["Value"] for t in tag_list(ctx.prop(props, "Tags"))}
        url = sqs.create_queue(QueueName=name, Attributes=attributes, tags=tags)["QueueUrl"]
        log.info("created SQS queue %s: %s", logical_id, url)
    else:
        # Converge an existing queue; FifoQueue cannot change after creation.
        settable = {k: v for k, v in attributes.items() if k != "FifoQueue"}
        if settable:
            sqs.set_queue_attributes(QueueUrl=url, Attributes=settable)
        log.info("reused SQS queue %s: %s", logical_id, url)
    warn_unapplied("SQS queue", logical_id, props, _QUEUE_ATTRIBUTES | {"QueueName", "Tags"})
    arn = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["QueueArn"])["Attributes"]
    return url, {"Arn": arn["QueueArn"], "QueueName": name, "QueueUrl": url}


def queue_policy(ctx: Context, logical_id: str, props: dict[str, Any]) -> tuple[None, dict]:
    document = json.dumps(ctx.prop(props, "PolicyDocument"))
    for url in ctx.prop(props, "Queues"):
        ctx.clients.sqs.set_queue_attributes(QueueUrl=url, Attributes={"Policy": document})
    log.info("applied SQS queue policy %s", logical_id)
    return None, {}
