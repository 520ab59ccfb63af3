"""Physical names for the template's resources, as CloudFormation would generate them."""

from __future__ import annotations

import hashlib
import re

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
