"""AWS::S3::Bucket: the bucket and the settings the template gives it."""

from __future__ import annotations

from typing import Any

from botocore.exceptions import ClientError

from iraas.aws import is_not_found
from iraas.local.provision.context import Context, log, tag_list, warn_unapplied
from iraas.local.provision.naming import S3_NAME_MAX, physical_name
from iraas.local.template import TemplateError

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


def queue_notification(config: dict[str, Any]) -> dict[str, Any]:
    out: dict[str, Any] = {"QueueArn": config["Queue"], "Events": [config["Event"]]}
    rules = config.get("Filter", {}).get("S3Key", {}).get("Rules")
    if rules:
        out["Filter"] = {"Key": {"FilterRules": rules}}
    return out


def bucket(ctx: Context, logical_id: str, props: dict[str, Any]) -> tuple[str, dict[str, str]]:
    s3 = ctx.clients.s3
    name = ctx.prop(props, "BucketName") or physical_name(ctx.stack_name, logical_id, S3_NAME_MAX)
    try:
        s3.head_bucket(Bucket=name)
        created = False
    except ClientError as exc:
        if not is_not_found(exc):
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
        config = {"QueueConfigurations": [queue_notification(q) for q in queues]}
        s3.put_bucket_notification_configuration(Bucket=name, NotificationConfiguration=config)
    tags = tag_list(ctx.prop(props, "Tags"))
    if tags:
        s3.put_bucket_tagging(Bucket=name, Tagging={"TagSet": tags})
    warn_unapplied("S3 bucket", logical_id, props, _BUCKET_PROPS)

    log.info("%s S3 bucket %s: %s", "created" if created else "reused", logical_id, name)
    return name, {
        "Arn": f"arn:aws:s3:::{name}",
        "DomainName": f"{name}.s3.amazonaws.com",
        "RegionalDomainName": f"{name}.s3.{ctx.region}.amazonaws.com",
    }
