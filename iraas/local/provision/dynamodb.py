"""AWS::DynamoDB::Table."""

from __future__ import annotations

from typing import Any

from botocore.exceptions import ClientError

from iraas.aws import error_code
from iraas.local.provision.context import Context, log, tag_list, warn_unapplied
from iraas.local.provision.naming import DYNAMODB_NAME_MAX, physical_name

_TABLE_PROPS = {
    "TableName", "KeySchema", "AttributeDefinitions", "BillingMode", "ProvisionedThroughput",
    "GlobalSecondaryIndexes", "LocalSecondaryIndexes", "StreamSpecification", "SSESpecification",
    "TimeToLiveSpecification", "PointInTimeRecoverySpecification", "Tags",
}


def _throughput(value: dict[str, Any]) -> dict[str, int]:
    return {key: int(units) for key, units in value.items()}


def _table_request(name: str, ctx: Context, props: dict[str, Any]) -> dict[str, Any]:
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
    tags = tag_list(ctx.prop(props, "Tags"))
    if tags:
        request["Tags"] = tags
    return request


def table(ctx: Context, logical_id: str, props: dict[str, Any]) -> tuple[str, dict[str, str]]:
    dynamodb = ctx.clients.dynamodb
    name = ctx.prop(props, "TableName") or physical_name(
        ctx.stack_name, logical_id, DYNAMODB_NAME_MAX
    )
    try:
        table = dynamodb.describe_table(TableName=name)["Table"]
        log.info("reused DynamoDB table %s: %s", logical_id, name)
    except ClientError as exc:
        if error_code(exc) != "ResourceNotFoundException":
            raise
        table = dynamodb.create_table(**_table_request(name, ctx, props))["TableDescription"]
        dynamodb.get_waiter("table_exists").wait(
            TableName=name, WaiterConfig={"Delay": 1, "MaxAttempts": 60}
        )
        ttl = ctx.prop(props, "TimeToLiveSpecification")
        if ttl:  # only on creation: enabling an enabled TTL again is an error in AWS
            dynamodb.update_time_to_live(TableName=name, TimeToLiveSpecification=ttl)
        log.info("created DynamoDB table %s: %s", logical_id, name)
    recovery = ctx.prop(props, "PointInTimeRecoverySpecification")
    if recovery:  # idempotent: enabling it again (a second `iraas up`) is not an error
        spec = {"PointInTimeRecoveryEnabled": bool(recovery.get("PointInTimeRecoveryEnabled"))}
        dynamodb.update_continuous_backups(TableName=name, PointInTimeRecoverySpecification=spec)
    warn_unapplied("DynamoDB table", logical_id, props, _TABLE_PROPS)
    attributes = {"Arn": table["TableArn"]}
    if table.get("LatestStreamArn"):
        attributes["StreamArn"] = table["LatestStreamArn"]
    return name, attributes
