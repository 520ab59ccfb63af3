"""iraas/aws/faults.py: faults injected at the AWS client (``IRAAS_FAULTS``) are parsed by botocore as
the real errors, and retried a bounded number of times with jittered backoff.

No request is sent: a fault answers at the client's before-send event, so the clients here point at
a port where nothing listens. Against moto (a call that succeeds on its fourth attempt, a student
import under DynamoDB throttling): tests/integration/aws/test_faults.py."""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass

import boto3
import pytest
from botocore.exceptions import ClientError

from iraas import aws
from iraas.aws import faults
from iraas.errors import ConfigError
from tests.support.backoff import record_backoff
from tests.support.faults import fault_setter

NOWHERE = "http://127.0.0.1:9"  # a fault answers before anything is sent, so nothing listens here


@dataclass(frozen=True)
class Where:
    region: str = "us-east-1"
    endpoint_url: str | None = NOWHERE


@pytest.fixture(autouse=True)
def no_counts():
    faults.reset()
    yield
    faults.reset()


@pytest.fixture
def env(monkeypatch: pytest.MonkeyPatch):
    """Sets IRAAS_FAULTS; clients made afterwards carry the faults (and start with no counts)."""
    yield fault_setter(monkeypatch)
    aws.reset_clients()


@pytest.fixture
def delays(monkeypatch: pytest.MonkeyPatch) -> list[float]:
    """The backoff botocore computes before each retry, recorded; the tests do not sleep it."""
    return record_backoff(monkeypatch)


def attempts(client) -> Counter[str]:
    """Every attempt (the first and each retry) the client makes, by operation."""
    seen: Counter[str] = Counter()
    client.meta.events.register("before-send", lambda event_name, **_: seen.update([event_name.rsplit(".", 1)[1]]))
    return seen


# ---- the syntax ----------------------------------------------------------------------------


def test_an_entry_names_service_operation_error_rate_and_count():
    plan = faults.parse(" s3:PutObject=SlowDown@0.3, sqs:*=ThrottlingException , s3:GetObject=503x3,"
                        " dynamodb:BatchWriteItem=ProvisionedThroughputExceededException@0.5x2")

    assert [(f.service, f.operation, f.code, f.status, f.rate, f.limit) for f in plan.faults] == [
        ("s3", "PutObject", "SlowDown", 503, 0.3, None),
        ("sqs", "*", "ThrottlingException", 400, 1.0, None),
        ("s3", "GetObject", "ServiceUnavailable", 503, 1.0, 3),
        ("dynamodb", "BatchWriteItem", "ProvisionedThroughputExceededException", 400, 0.5, 2),
    ]


@pytest.mark.parametrize(
    ("entry", "why"),
    [
        ("s3PutObject=SlowDown", "is not SERVICE:OPERATION=ERROR"),
        ("s3:PutObject", "is not SERVICE:OPERATION=ERROR"),
        ("s3:PutObject=SlowDown@", "is not SERVICE:OPERATION=ERROR"),
        ("s4:PutObject=SlowDown", "names no AWS service 's4'"),
        ("s3:PutObjekt=SlowDown", "names no s3 operation 'PutObjekt'"),
        ("s3:PutObject=Slowdown", "unknown error 'Slowdown'"),
        ("s3:PutObject=404", "has status 404"),
        ("s3:PutObject=SlowDown@1.5", "has rate 1.5"),
        ("s3:PutObject=SlowDown@0", "has rate 0"),
        ("s3:PutObject=SlowDownx0", "has count 0"),
    ],
)
def test_a_bad_entry_is_one_line_that_names_it(entry: str, why: str):
    with pytest.raises(ConfigError) as raised:
        faults.from_environ({faults.FAULTS_ENV: f"sqs:*=ThrottlingException@0.1,{entry}"})

    message = str(raised.value)
    assert "\n" not in message
    assert message.startswith(f"IRAAS_FAULTS: {entry!r} ") and why in message
    assert "ThrottlingException@0.1" not in message  # the good entry is not blamed


def test_a_bad_seed_is_refused():
    with pytest.raises(ConfigError, match="IRAAS_FAULTS_SEED='soon' is not a whole number"):
        faults.from_environ({faults.FAULTS_ENV: "s3:*=503", faults.SEED_ENV: "soon"})


def test_a_bad_value_stops_the_first_client(env):
    env("s3:PutObject=SlowDown@2")

    with pytest.raises(ConfigError, match="has rate 2"):
        aws.client(Where(), "s3")


def test_without_the_variable_no_hook_is_installed(env):
    env(None)

    client = aws.client(Where(), "s3")

    assert faults.from_environ() is None and faults.from_environ({faults.FAULTS_ENV: " "}) is None
    handlers = client.meta.events._emitter._handlers.prefix_search("before-send.s3.PutObject")
    assert not [h for h in handlers if "before_send" in getattr(h, "__qualname__", "")]


def test_a_seed_repeats_the_draws():
    def draws(seed: int) -> list[bool]:
        plan = faults.parse("s3:GetObject=SlowDown@0.3", seed)
        return [plan.draw("s3", "GetObject") is not None for _ in range(1000)]

    assert draws(7) == draws(7) != draws(8)
    assert 240 <= sum(draws(7)) <= 360  # about 30%


def test_a_count_limits_the_faults_and_other_operations_are_left_alone():
    plan = faults.parse("s3:GetObject=SlowDownx3")

    fired = [plan.draw("s3", "GetObject") is not None for _ in range(5)]

    assert fired == [True, True, True, False, False]
    assert plan.draw("s3", "PutObject") is None and plan.draw("sqs", "GetObject") is None
    assert faults.injected() == Counter({"s3:GetObject": 3})


# ---- the answers, as botocore sees them ------------------------------------------------------


@pytest.mark.parametrize(
    ("service", "spec", "call", "code", "status"),
    [
        ("s3", "s3:PutObject=SlowDown", lambda c: c.put_object(Bucket="b", Key="k", Body=b"x"), "SlowDown", 503),
        ("s3", "s3:GetObject=503", lambda c: c.get_object(Bucket="b", Key="k"), "ServiceUnavailable", 503),
        ("sqs", "sqs:*=ThrottlingException",
         lambda c: c.send_message_batch(QueueUrl=f"{NOWHERE}/1/q", Entries=[{"Id": "0", "MessageBody": "m"}]),
         "ThrottlingException", 400),
        ("sqs", "sqs:ReceiveMessage=RequestThrottled", lambda c: c.receive_message(QueueUrl=f"{NOWHERE}/1/q"),
         "RequestThrottled", 400),
        ("dynamodb", "dynamodb:BatchWriteItem=ProvisionedThroughputExceededException",
         lambda c: c.batch_write_item(RequestItems={"t": [{"PutRequest": {"Item": {"name": {"S": "x"}}}}]}),
         "ProvisionedThroughputExceededException", 400),
        ("dynamodb", "dynamodb:GetItem=ThrottlingException",
         lambda c: c.get_item(TableName="t", Key={"name": {"S": "x"}}), "ThrottlingException", 400),
    ],
)
def test_an_injected_error_is_the_real_error_retried_max_attempts_times(env, delays, service, spec, call, code, status):
    env(spec)
    client = aws.client(Where(), service)
    seen = attempts(client)

    with pytest.raises(ClientError) as raised:
        call(client)

    error = raised.value.response
    assert error["Error"]["Code"] == code
    assert error["ResponseMetadata"]["HTTPStatusCode"] == status
    assert error["ResponseMetadata"]["RetryAttempts"] == aws.MAX_ATTEMPTS - 1
    assert isinstance(raised.value, getattr(client.exceptions, code, ClientError))  # a modeled error is its class
    operation = raised.value.operation_name
    assert seen == Counter({operation: aws.MAX_ATTEMPTS})
    assert faults.injected() == Counter({f"{service}:{operation}": aws.MAX_ATTEMPTS})
    assert len(delays) == aws.MAX_ATTEMPTS - 1


def test_the_protocols_are_the_services_own():
    session = boto3.session.Session(region_name="us-east-1")
    protocols = {name: session.client(name, aws_access_key_id="a", aws_secret_access_key="b").meta.service_model.protocol
                 for name in ("s3", "sqs", "dynamodb")}
    assert protocols == {"s3": "rest-xml", "sqs": "json", "dynamodb": "json"}
    xml = faults.error_response("rest-xml", "s3", "u", 503, "SlowDown", "slow").content
    assert b"<Error><Code>SlowDown</Code><Message>slow</Message>" in xml
    assert b'"__type": "com.amazonaws.sqs#ThrottlingException"' in faults.error_response(
        "json", "sqs", "u", 400, "ThrottlingException", "m").content


def test_backoff_is_exponential_with_jitter(env, delays):
    env("s3:GetObject=SlowDown, s3:PutObject=InternalError")
    s3 = aws.client(Where(), "s3")

    for _ in range(20):
        with pytest.raises(ClientError):
            s3.get_object(Bucket="b", Key="k")
    throttled = [delays[i::3] for i in range(3)]  # the 1st, 2nd, 3rd retry of each call
    del delays[:]
    with pytest.raises(ClientError):
        s3.put_object(Bucket="b", Key="k", Body=b"x")

    # Throttling: a random delay in [0, 1 s), [0, 2 s), [0, 4 s); other errors start at 50 ms.
    for retry, seen in enumerate(throttled):
        assert all(0 <= d < 2**retry for d in seen)
        assert len(set(seen)) == len(seen)  # jitter: no two the same
    assert max(throttled[2]) > 1  # and it grows
    assert len(delays) == 3 and all(0 <= d < 0.05 * 2**i for i, d in enumerate(delays))


def test_an_endpoint_that_keeps_throttling_gets_fewer_retries_not_more(env, delays):
    env("sqs:ReceiveMessage=ThrottlingException")
    sqs = aws.client(Where(), "sqs")
    seen = attempts(sqs)

    for _ in range(100):
        with pytest.raises(ClientError):
            sqs.receive_message(QueueUrl=f"{NOWHERE}/1/q")

    # The client's retry quota (500, 5 a throttled retry) runs out after 100 retries: then each
    # call is tried once. Without it 100 calls would be 400 attempts.
    assert seen["ReceiveMessage"] == 100 + 100
    assert faults.injected()["sqs:ReceiveMessage"] == 200
