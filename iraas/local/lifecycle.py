"""The buckets' lifecycle rules, applied on the embedded endpoint as S3 applies them.

moto stores a bucket's lifecycle configuration but never acts on it, and ``iraas up`` keeps what
its buckets hold across restarts (``iraas/local/durable``): without this, uploaded photos, videos
and attendance CSVs would stay on the machine for ever, not the ``*RetentionDays`` the template
promises. ``iraas up`` runs :func:`expire_buckets` a minute after it starts and every hour, through
boto3 like any other client (list, then a batched delete).

The rules' semantics are S3's: an object expires ``Days`` after its creation, rounded up to the
next midnight UTC; a rule applies to the keys under its prefix (``Prefix`` or ``Filter.Prefix``);
only ``Enabled`` rules count. Rules that filter on tags or object size, ``Expiration.Date``,
transitions and noncurrent versions are not applied (the templates use none: ``iraas.local.provision``
refuses them). Incomplete multipart uploads are not aborted here: the state file does not keep them,
so a restart drops them.
"""

from __future__ import annotations

import datetime
import logging
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

from botocore.exceptions import ClientError

log = logging.getLogger(__name__)

FIRST_RUN_AFTER_S = 60.0  # not in the way of a burst sent as soon as the stack is ready
EXPIRE_EVERY_S = 3600.0  # S3 itself runs its rules about once a day; an hour keeps a stop-start loop honest
DELETE_BATCH = 1000  # DeleteObjects' limit


@dataclass(frozen=True)
class ExpiryRule:
    id: str
    prefix: str
    days: int


def expiry_rules(configuration: dict[str, Any]) -> list[ExpiryRule]:
    """The enabled ``Expiration.Days`` rules of a ``GetBucketLifecycleConfiguration`` answer."""
    rules = []
    for rule in configuration.get("Rules", []):
        days = (rule.get("Expiration") or {}).get("Days")
        if rule.get("Status") != "Enabled" or days is None:
            continue
        where = rule.get("Filter", {})
        if set(where) - {"Prefix"}:  # tags, sizes or And: not applied here (see the module's docstring)
            log.debug("lifecycle rule %s filters on %s: not applied locally", rule.get("ID"), sorted(where))
            continue
        rules.append(ExpiryRule(rule.get("ID", ""), where.get("Prefix", rule.get("Prefix", "")) or "", int(days)))
    return rules


def expires_at(created: datetime.datetime, days: int) -> datetime.datetime:
    """When S3 expires an object made at ``created`` under a rule of ``days``: ``days`` later,
    rounded up to the next midnight UTC."""
    due = created.astimezone(datetime.UTC) + datetime.timedelta(days=days)
    midnight = due.replace(hour=0, minute=0, second=0, microsecond=0)
    return midnight if midnight == due else midnight + datetime.timedelta(days=1)


def expired_keys(s3: Any, bucket: str, rules: list[ExpiryRule], now: datetime.datetime) -> Iterator[str]:
    """Every key of ``bucket`` that one of ``rules`` has expired at ``now`` (each key once)."""
    seen: set[str] = set()
    for rule in rules:
        for page in s3.get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=rule.prefix):
            for obj in page.get("Contents", []):
                if obj["Key"] not in seen and expires_at(obj["LastModified"], rule.days) <= now:
                    seen.add(obj["Key"])
                    yield obj["Key"]


def expire_bucket(s3: Any, bucket: str, now: datetime.datetime) -> int:
    """Delete what ``bucket``'s lifecycle rules have expired at ``now``; the number deleted."""
    try:
        configuration = s3.get_bucket_lifecycle_configuration(Bucket=bucket)
    except ClientError as exc:
        if exc.response.get("Error", {}).get("Code") == "NoSuchLifecycleConfiguration":
            return 0
        raise
    rules = expiry_rules(configuration)
    deleted = 0
    batch: list[str] = []
    for key in expired_keys(s3, bucket, rules, now):
        batch.append(key)
        if len(batch) == DELETE_BATCH:
            deleted += _delete(s3, bucket, batch)
            batch = []
    if batch:
        deleted += _delete(s3, bucket, batch)
    return deleted


def _delete(s3: Any, bucket: str, keys: list[str]) -> int:
    answer = s3.delete_objects(Bucket=bucket, Delete={"Objects": [{"Key": k} for k in keys], "Quiet": True})
    for error in answer.get("Errors", []):  # the next run tries again
        log.warning("could not expire s3://%s/%s: %s", bucket, error.get("Key"), error.get("Message"))
    return len(keys) - len(answer.get("Errors", []))


def expire_buckets(s3: Any, now: datetime.datetime | None = None) -> dict[str, int]:
    """Apply every bucket's expiration rules; the number of objects deleted per bucket (only
    buckets where something expired)."""
    now = now or datetime.datetime.now(datetime.UTC)
    counts = {}
    for bucket in s3.list_buckets().get("Buckets", []):
        deleted = expire_bucket(s3, bucket["Name"], now)
        if deleted:
            counts[bucket["Name"]] = deleted
    return counts
