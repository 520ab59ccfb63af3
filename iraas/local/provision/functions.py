"""AWS::Serverless::Function: not run by the endpoint; its S3 events go to a local queue instead."""

from __future__ import annotations

from typing import Any

from botocore.exceptions import ClientError

from iraas.aws import error_code
from iraas.local.provision.context import Context, log
from iraas.local.provision.naming import SQS_NAME_MAX, physical_name
from iraas.local.provision.s3 import queue_notification
from iraas.local.template import TemplateError
from iraas.queues import NO_SUCH_QUEUE


def event_queue_id(function_logical_id: str) -> str:
    """The stack.json entry of the local queue that carries a function's S3 events."""
    return f"{function_logical_id}.EventQueue"


def sqs_source_id(function_logical_id: str) -> str:
    """The stack.json entry of the queue whose messages invoke a function (its SQS event)."""
    return f"{function_logical_id}.SqsQueue"


def function(ctx: Context, logical_id: str, props: dict[str, Any]) -> tuple[None, dict[str, str]]:
    """The function itself does not exist locally; its events reach a queue that a runner polls.

    SAM turns an S3 event into the bucket's NotificationConfiguration plus a Lambda permission. Here
    the bucket notifies a queue (same events, same filter), and the runner started by ``iraas up``
    hands each message's S3 event to the handler, as the Lambda service would. An SQS event's queue
    is the template's own: its runners poll it and hand the handler SQS events (one record each).
    """
    sqs_events = [e.get("Properties", {}) for e in (props.get("Events") or {}).values() if e.get("Type") == "SQS"]
    if len(sqs_events) > 1:
        raise TemplateError(f"{logical_id}: one SQS event per function is run locally")
    for event in sqs_events:
        arn = str(ctx.resolver.resolve(event["Queue"]))
        url = ctx.clients.sqs.get_queue_url(QueueName=arn.rsplit(":", 1)[-1])["QueueUrl"]
        ctx.resolver.physical[sqs_source_id(logical_id)] = url
        log.info("%s takes the messages of %s", logical_id, url)
    events = [e.get("Properties", {}) for e in (props.get("Events") or {}).values() if e.get("Type") == "S3"]
    if not events:
        if not sqs_events:
            log.debug("skipped %s (AWS::Serverless::Function): without S3 or SQS events it is not run locally", logical_id)
        return None, {}
    sqs, s3 = ctx.clients.sqs, ctx.clients.s3
    name = physical_name(ctx.stack_name, f"{logical_id}Events", SQS_NAME_MAX)
    # A message stays hidden while the handler runs, as long as the function's timeout.
    attributes = {"VisibilityTimeout": str(int(ctx.prop(props, "Timeout", 300)))}
    try:
        url = sqs.get_queue_url(QueueName=name)["QueueUrl"]
        sqs.set_queue_attributes(QueueUrl=url, Attributes=attributes)
    except ClientError as exc:
        if error_code(exc) not in NO_SUCH_QUEUE:
            raise
        url = sqs.create_queue(QueueName=name, Attributes=attributes)["QueueUrl"]
    arn = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
    by_bucket: dict[str, list[dict[str, Any]]] = {}
    for event in events:
        bucket = ctx.resolver.resolve(event["Bucket"])
        kinds = ctx.resolver.resolve(event["Events"])
        for kind in [kinds] if isinstance(kinds, str) else kinds:
            config = {"Queue": arn, "Event": kind, "Filter": ctx.resolver.resolve(event.get("Filter", {}))}
            by_bucket.setdefault(bucket, []).append(queue_notification(config))
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
