"""Create template.yaml's resources on an AWS-compatible endpoint (moto) as CloudFormation would.

Same properties, dependency order, generated names; idempotent for a given stack name. Created:
AWS::S3::Bucket, AWS::SQS::Queue, AWS::SQS::QueuePolicy, AWS::DynamoDB::Table; an
AWS::Serverless::Function's S3 events become an S3 -> SQS notification to a local-only queue, which
``iraas up``'s runner polls to invoke the function's handler with the real S3 event; its SQS event's
queue is named as the queue that the runner polls. Every other type (Serverless, IAM, EC2, Lambda, S3
bucket policies, Secrets Manager, KMS, CloudWatch alarms and dashboards, SNS, ...) is skipped with a
debug line; a created resource that refers to a skipped one is an error.
"""

from __future__ import annotations

import logging
from typing import Any

import boto3

from iraas.local.provision import dynamodb, functions, s3, sqs
from iraas.local.provision.context import Clients, Context, Handler
from iraas.local.provision.functions import event_queue_id, sqs_source_id
from iraas.local.provision.naming import physical_name
from iraas.local.template import Resolver, TemplateError, resource_order

log = logging.getLogger(__name__)

__all__ = ["HANDLERS", "event_queue_id", "physical_name", "provision", "sqs_source_id"]


SKIPPED_BECAUSE = {
    # moto (>= 5.0, getmoto/moto#5820) enforces Deny statements of a bucket policy on object
    # requests without evaluating their Condition: the TLS-only policy would refuse every
    # GetObject/PutObject, and the local endpoint is plain HTTP anyway.
    "AWS::S3::BucketPolicy": "moto would enforce its Deny statements ignoring their Condition",
    # The webhook secret: on `iraas up` callbacks are signed with $IRAAS_WEBHOOK_SECRET, from the
    # environment, not the endpoint; the secret's key goes with it.
    "AWS::SecretsManager::Secret": "locally the secret is $IRAAS_WEBHOOK_SECRET",
    "AWS::KMS::Key": "it encrypts the webhook secret or the alarm topic, neither of which is created locally",
    # Alarms and the dashboard: CloudWatch does not watch the local endpoint; `GET /metrics` and
    # `iraas status` are the local stack's view (docs/operations.md). Their topic goes with them.
    "AWS::CloudWatch::Alarm": "CloudWatch does not watch the local stack (GET /metrics does)",
    "AWS::CloudWatch::Dashboard": "CloudWatch does not watch the local stack (GET /metrics does)",
    "AWS::SNS::Topic": "it carries only the alarms, which are not created locally",
    "AWS::SNS::Subscription": "it carries only the alarms, which are not created locally",
}

HANDLERS: dict[str, Handler] = {
    "AWS::S3::Bucket": s3.bucket,
    "AWS::SQS::Queue": sqs.queue,
    "AWS::SQS::QueuePolicy": sqs.queue_policy,
    "AWS::DynamoDB::Table": dynamodb.table,
    "AWS::Serverless::Function": functions.function,
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
    clients = Clients(session, endpoint_url, region)
    account_id = clients.sts.get_caller_identity()["Account"]
    resolver = Resolver(
        template, region=region, stack_name=stack_name, account_id=account_id, parameters=parameters
    )
    ctx = Context(clients, resolver, stack_name, region)
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
