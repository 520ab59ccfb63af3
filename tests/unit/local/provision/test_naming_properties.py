"""Properties of iraas/local/provision/naming.py: physical resource names are valid for S3, SQS and
DynamoDB, the same on every run, and distinct for distinct logical ids."""

from __future__ import annotations

import re

import pytest
from hypothesis import example, given, settings
from hypothesis import strategies as st

from iraas.local.provision.naming import DYNAMODB_NAME_MAX, S3_NAME_MAX, SQS_NAME_MAX, physical_name

pytestmark = pytest.mark.timeout(60)
PROPERTY = settings(max_examples=300, deadline=None, derandomize=True, database=None)

# CloudFormation's stack names and logical ids.
stack_names = st.from_regex(r"[A-Za-z][-A-Za-z0-9]{0,127}", fullmatch=True)
logical_ids = st.from_regex(r"[A-Za-z0-9]{1,255}", fullmatch=True)
SERVICES = {
    "s3": (S3_NAME_MAX, "", re.compile(r"[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]")),
    "sqs": (SQS_NAME_MAX, "", re.compile(r"[A-Za-z0-9_-]{1,80}")),
    "sqs-fifo": (SQS_NAME_MAX, ".fifo", re.compile(r"[A-Za-z0-9_-]{1,75}\.fifo")),
    "dynamodb": (DYNAMODB_NAME_MAX, "", re.compile(r"[A-Za-z0-9_.-]{3,255}")),
}


@PROPERTY
@given(stack=stack_names, logical_id=logical_ids, service=st.sampled_from(sorted(SERVICES)))
@example(stack="a", logical_id="B", service="s3")
@example(stack="a" * 128, logical_id="B" * 255, service="s3")
@example(stack="a--", logical_id="B", service="sqs-fifo")
def test_physical_names_are_valid_for_their_service(stack: str, logical_id: str, service: str) -> None:
    max_len, end, valid = SERVICES[service]
    name = physical_name(stack, logical_id, max_len, end)
    assert valid.fullmatch(name), name
    assert len(name) <= max_len
    assert "--" not in name  # never an S3 "xn--" prefix or "--ol-s3" suffix
    assert name == physical_name(stack, logical_id, max_len, end)  # a second run finds the first's


@PROPERTY
@given(stack=stack_names, ids=st.lists(logical_ids, min_size=2, max_size=6, unique=True), service=st.sampled_from(sorted(SERVICES)))
@example(stack="iraas", ids=["A" * 100 + "1", "A" * 100 + "2"], service="s3")  # differ only past the cut
def test_physical_names_are_distinct_for_distinct_logical_ids(stack: str, ids: list[str], service: str) -> None:
    max_len, end, _ = SERVICES[service]
    names = [physical_name(stack, logical_id, max_len, end) for logical_id in ids]
    assert len(set(names)) == len(names)
