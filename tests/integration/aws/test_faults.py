"""iraas/aws/faults.py against moto in-process: a call whose first three attempts meet a fault succeeds
on its fourth, and a student import under DynamoDB throttling writes each student once.

The syntax and the errors as botocore parses them need no endpoint: tests/unit/aws/test_faults.py."""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass

import moto
import pytest
from moto.core.botocore_stubber import BotocoreStubber

from iraas import aws
from iraas.aws import faults
from tests.support.backoff import record_backoff
from tests.support.faults import fault_setter


@dataclass(frozen=True)
class Where:
    region: str = "us-east-1"
    endpoint_url: str | None = None  # moto in-process: AWS's own endpoints, answered here


@pytest.fixture(autouse=True)
def no_counts():
    faults.reset()
    yield
    faults.reset()


@pytest.fixture
def unsent(monkeypatch: pytest.MonkeyPatch) -> None:
    """moto's in-process endpoint sees every request, even one a fault answered (botocore calls
    every before-send handler); over HTTP that request is never sent. Here moto skips it too."""
    original = BotocoreStubber.__call__

    def endpoint(self, event_name, request, **kwargs):
        return None if faults.injected_into(request) else original(self, event_name, request, **kwargs)

    monkeypatch.setattr(BotocoreStubber, "__call__", endpoint)


@pytest.fixture
def env(monkeypatch: pytest.MonkeyPatch):
    """Sets IRAAS_FAULTS; clients made afterwards carry the faults (and start with no counts)."""
    yield fault_setter(monkeypatch)
    aws.reset_clients()


@pytest.fixture
def delays(monkeypatch: pytest.MonkeyPatch) -> list[float]:
    """The backoff botocore computes before each retry, recorded; the tests do not sleep it."""
    return record_backoff(monkeypatch)


def test_a_call_that_fails_the_first_three_times_succeeds_on_its_fourth_attempt(env, delays, aws_credentials, unsent):
    with moto.mock_aws():
        env("s3:PutObject=SlowDownx3")
        s3 = aws.client(Where(endpoint_url=None), "s3")
        s3.create_bucket(Bucket="faults")

        response = s3.put_object(Bucket="faults", Key="k", Body=b"once", IfNoneMatch="*")

        assert response["ResponseMetadata"]["RetryAttempts"] == 3
        assert s3.get_object(Bucket="faults", Key="k")["Body"].read() == b"once"
        assert faults.injected() == Counter({"s3:PutObject": 3})


def test_a_student_import_under_dynamodb_throttling_writes_each_student_once(stack, env, delays, unsent):
    from iraas.classroom.settings import load_face_settings
    from iraas.classroom.student_store import student_store
    from iraas.classroom.students import StudentRecord

    # At most 3 faults a rule: each call gets through within its 4 attempts, whatever the draws.
    env("dynamodb:TransactWriteItems=ProvisionedThroughputExceededExceptionx3,"
        " dynamodb:BatchGetItem=ThrottlingException@0.5x3", seed=13)
    store = student_store(load_face_settings())
    records = [StudentRecord(str(1000 + i), f"Student {i:03}", "Law", "senior") for i in range(60)]

    store.put_students(records)
    store.put_students([StudentRecord(r.id, r.name, "History", r.year) for r in records[:10]])  # updates

    summaries, more = store.summaries()
    assert faults.injected()["dynamodb:TransactWriteItems"] == 3 and sum(faults.injected().values()) > 3
    assert [s.name for s in summaries] == [r.name for r in records] and not more
    assert sum(s.major == "History" for s in summaries) == 10
