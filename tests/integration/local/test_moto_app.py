"""The embedded endpoint's patched moto: the patches fit the pinned moto, fail loudly when they do
not, compute what moto computes, and the server behaves as moto's for the calls the stack makes."""

from __future__ import annotations

import copy
import datetime
import json
import random
import re
import socket
import subprocess
import sys
import time
import urllib.parse
from collections.abc import Callable, Iterator
from importlib.metadata import version
from pathlib import Path
from typing import Any

import boto3
import moto  # noqa: F401 - moto first, so that it patches botocore before any client exists
import moto.backends
import moto.dynamodb.models as ddb_models
import moto.sqs.models as sqs_models
import pytest
from botocore.config import Config
from botocore.exceptions import ClientError
from moto import mock_aws
from moto.moto_server.werkzeug_app import DomainDispatcherApplication, create_backend_app
from werkzeug.test import EnvironBuilder

from iraas.aws import local_credentials_env
from iraas.local import moto_app
from iraas.local.moto_app import PATCHES, CachedDomainDispatcherApplication, MotoPatchError
from iraas.local.motoserver import MotoServer

REPO_ROOT = Path(__file__).resolve().parents[3]
REGION = "us-east-1"
ACCOUNT = "123456789012"


# --- (a) the patches fit the pinned moto, and say so loudly when they do not ----------------


def test_moto_is_the_pinned_version() -> None:
    pin = re.search(r'"moto\[server\]==([^"]+)"', (REPO_ROOT / "pyproject.toml").read_text())
    assert pin, "moto is pinned exactly in pyproject.toml (the patches depend on its internals)"
    assert version("moto") == pin.group(1)


@pytest.mark.parametrize("patch", PATCHES, ids=lambda patch: patch.name)
def test_every_patch_fits_the_pinned_moto(patch: moto_app.Patch) -> None:
    patch.check()


def test_the_patches_apply_in_a_fresh_process() -> None:
    # In a child process, so that this test session's in-process moto stays unpatched.
    script = (
        "import moto.sqs.models as m\n"
        "from iraas.local import moto_app as a\n"
        "a.apply_patches(); a.apply_patches(); a.check_patches()\n"  # idempotent, still fits once applied
        "assert m.unix_time is a.fast_unix_time and m.unix_time_millis is a.fast_unix_time_millis\n"
        "assert m.Queue.messages.fget is a._queue_messages\n"
        "assert m.SQSBackend.get_queue_attributes is a.get_queue_attributes\n"
        "assert m.SQSBackend.is_message_valid_based_on_retention_period is a.is_message_valid_based_on_retention_period\n"
        "import moto.dynamodb.models as d\n"
        "assert d.copy is a._COPY and d.DynamoDBBackend.transact_write_items is a.transact_write_items\n"
        "assert isinstance(a.make_app(), a.CachedDomainDispatcherApplication)\n"
        "print('applied')\n"
    )
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=120, cwd=REPO_ROOT)
    assert done.returncode == 0, done.stderr
    assert "applied" in done.stdout


def _other_retention_check(self: Any, queue_name: str, message: Any, now: float) -> bool:
    return True


def _other_get_queue_attributes(self: Any, queue_name: str, attribute_names: list[str]) -> dict[str, Any]:
    return {name: "?" for name in attribute_names}


BREAKAGES: dict[str, Callable[[pytest.MonkeyPatch], None]] = {
    "dispatcher_host_cache": lambda mp: mp.delattr(moto.backends, "list_of_moto_modules"),
    "sqs_clock": lambda mp: mp.setattr(sqs_models, "unix_time", time.time),
    "sqs_queue_counts": lambda mp: mp.setattr(
        sqs_models.Queue, "approximate_number_of_messages_delayed", property(lambda self: 0)
    ),
    "sqs_retention_check": lambda mp: mp.setattr(
        sqs_models.SQSBackend, "is_message_valid_based_on_retention_period", _other_retention_check
    ),
    "sqs_attributes_once": lambda mp: mp.setattr(sqs_models.SQSBackend, "get_queue_attributes", _other_get_queue_attributes),
    "sqs_abandoned_long_poll": lambda mp: mp.setattr(sqs_models.Queue, "wait_for_messages", lambda self, seconds: None),
    "dynamodb_transaction_copy": lambda mp: mp.setattr(
        ddb_models.DynamoDBBackend, "transact_write_items", lambda self, transact_items: None
    ),
}


def test_every_patch_has_a_breakage_test() -> None:
    assert set(BREAKAGES) == {patch.name for patch in PATCHES}


@pytest.mark.parametrize("name", sorted(BREAKAGES))
def test_a_patch_that_no_longer_fits_fails_loudly_naming_it(name: str, monkeypatch: pytest.MonkeyPatch) -> None:
    BREAKAGES[name](monkeypatch)  # moto "upgraded": an internal the patch relies on changed
    with pytest.raises(MotoPatchError, match=f"moto patch '{name}' does not fit"):
        next(patch for patch in PATCHES if patch.name == name).check()
    with pytest.raises(MotoPatchError, match=name):
        moto_app.apply_patches()  # checks all of them before applying any
    with pytest.raises(MotoPatchError, match=name):
        moto_app.make_app()  # so the server refuses to start


# --- the patched functions compute what moto's compute --------------------------------------


def test_the_fast_clock_is_moto_clock_bit_for_bit(monkeypatch: pytest.MonkeyPatch) -> None:
    epoch = datetime.datetime(1970, 1, 1)
    rng = random.Random(7)
    samples = [0, 1, 999, 1000, 86_400 * 10**9 - 1, time.time_ns()] + [rng.randrange(10**18, 4 * 10**18) for _ in range(2000)]
    for ns in samples:
        monkeypatch.setattr(moto_app.time, "time_ns", lambda ns=ns: ns)
        # datetime.now floors the system clock to microseconds: the datetime moto would build.
        now = epoch + datetime.timedelta(microseconds=ns // 1000)
        assert moto_app.fast_unix_time() == moto_app._original_unix_time(now)
        assert moto_app.fast_unix_time_millis() == moto_app._original_unix_time_millis(now)
    some = datetime.datetime(2024, 2, 29, 12, 34, 56, 789012)
    assert moto_app.fast_unix_time(some) == moto_app._original_unix_time(some)


@pytest.fixture
def sqs_backend() -> Iterator[tuple[sqs_models.SQSBackend, list[sqs_models.Message]]]:
    """moto's SQS backend, in-process (reset by mock_aws), with a queue holding messages in every
    state. The functions under test are called directly: this process's moto stays unpatched."""
    with mock_aws():
        backend = sqs_models.sqs_backends[ACCOUNT][REGION]
        backend.create_queue("dlq")
        dlq_arn = backend.get_queue("dlq").queue_arn
        backend.create_queue(
            "q",
            MessageRetentionPeriod="60",
            RedrivePolicy=json.dumps({"deadLetterTargetArn": dlq_arn, "maxReceiveCount": 3}),
        )
        backend.create_queue("f.fifo", FifoQueue="true", ContentBasedDeduplication="true")
        messages = [backend.send_message("q", f"m{i}") for i in range(6)]
        backend.send_message("q", "later", delay_seconds=30)
        backend.receive_message("q", 2, 0, 30)  # two in flight
        yield backend, messages


Backend = tuple[sqs_models.SQSBackend, list[sqs_models.Message]]


def test_the_queue_counts_are_moto_counts(sqs_backend: Backend) -> None:
    backend, _ = sqs_backend
    queue = backend.get_queue("q")
    for attr, (ours, _) in moto_app._QUEUE_COUNTS.items():
        original = moto_app._original_queue_counts[attr]
        assert isinstance(original, property)
        assert ours(queue) == original.fget(queue), attr
    assert len(moto_app._queue_messages(queue)) == 4
    assert moto_app._queue_not_visible(queue) == 2
    assert moto_app._queue_delayed(queue) == 1


def test_the_retention_check_is_moto_check(sqs_backend: Backend) -> None:
    backend, messages = sqs_backend
    original = moto_app._original_retention_check
    assert original is not None
    now_ms = time.time() * 1000
    for age_s in (0, 30, 59, 61, 3600):
        message = messages[0]
        message.sent_timestamp = int(now_ms - age_s * 1000)
        expected = original(backend, "q", message)
        assert moto_app.is_message_valid_based_on_retention_period(backend, "q", message) is expected
        assert expected is (age_s < 60)
    with pytest.raises(sqs_models.QueueDoesNotExist):
        moto_app.is_message_valid_based_on_retention_period(backend, "missing", messages[0])


@pytest.mark.parametrize(
    "names",
    [
        [],
        ["All"],
        ["ApproximateNumberOfMessages"],
        ["ApproximateNumberOfMessages", "ApproximateNumberOfMessagesNotVisible", "ApproximateNumberOfMessagesDelayed"],
        ["QueueArn", "QueueArn"],
        ["RedrivePolicy", "Policy", "KmsMasterKeyId"],  # set, unset (None: left out), absent
        ["FifoQueue", "ContentBasedDeduplication", "VisibilityTimeout"],
        ["All", "QueueArn"],
    ],
)
@pytest.mark.parametrize("queue_name", ["q", "f.fifo"])
def test_get_queue_attributes_is_moto_answer(names: list[str], queue_name: str, sqs_backend: Backend) -> None:
    backend, _ = sqs_backend
    original = moto_app._original_get_queue_attributes
    assert original is not None
    assert moto_app.get_queue_attributes(backend, queue_name, names) == original(backend, queue_name, names)


@pytest.mark.parametrize("names", [["Nope"], [""], ["QueueArn", "Nope"]])
def test_get_queue_attributes_rejects_what_moto_rejects(names: list[str], sqs_backend: Backend) -> None:
    backend, _ = sqs_backend
    original = moto_app._original_get_queue_attributes
    assert original is not None
    with pytest.raises(sqs_models.InvalidAttributeName) as theirs:
        original(backend, "q", names)
    with pytest.raises(sqs_models.InvalidAttributeName) as ours:
        moto_app.get_queue_attributes(backend, "q", names)
    assert str(ours.value) == str(theirs.value)
    with pytest.raises(sqs_models.QueueDoesNotExist):
        moto_app.get_queue_attributes(backend, "missing", ["All"])


# --- dynamodb_transaction_copy: one copy of a table per transaction, moto's transaction otherwise --


class CountingCopy:
    """A ``copy`` module that counts the deep copies of moto tables made through it."""

    def __init__(self) -> None:
        self.tables = 0

    def __getattr__(self, name: str) -> Any:
        return getattr(copy, name)

    def deepcopy(self, value: Any, memo: Any = None) -> Any:
        self.tables += isinstance(value, ddb_models.Table)
        return copy.deepcopy(value, memo)


def _two_tables_of_students() -> ddb_models.DynamoDBBackend:
    """moto's DynamoDB backend in-process (inside mock_aws, which resets it), with two tables of 300
    students each. The functions under test are called directly: this process's moto stays unpatched."""
    backend = ddb_models.dynamodb_backends[ACCOUNT][REGION]
    for table in ("students", "others"):
        backend.create_table(
            table, schema=[{"AttributeName": "name", "KeyType": "HASH"}],
            attr=[{"AttributeName": "name", "AttributeType": "S"}], throughput=None,
            billing_mode="PAY_PER_REQUEST", indexes=None, global_indexes=None, streams=None,
            sse_specification=None, tags=[], deletion_protection_enabled=False, warm_throughput=None,
        )
        for n in range(300):
            backend.put_item(table, {"name": {"S": f"S{n:03}"}, "major": {"S": "Law"}})
    return backend


@pytest.fixture
def dynamodb_backend() -> Iterator[ddb_models.DynamoDBBackend]:
    with mock_aws():
        yield _two_tables_of_students()


def _update(table: str, name: str, major: str, condition: str | None = None) -> dict[str, Any]:
    update: dict[str, Any] = {
        "TableName": table, "Key": {"name": {"S": name}}, "UpdateExpression": "SET major = :m",
        "ExpressionAttributeValues": {":m": {"S": major}},
    }
    if condition:
        update["ConditionExpression"] = condition
    return {"Update": update}


def _items(backend: ddb_models.DynamoDBBackend) -> dict[str, Any]:
    return {name: sorted((k, str(v)) for item in table.all_items() for k, v in item.to_json()["Attributes"].items())
            for name, table in backend.tables.items()}


TRANSACTIONS: dict[str, list[dict[str, Any]]] = {
    "100 updates of one table": [_update("students", f"S{n:03}", "Art") for n in range(100)],
    "updates of two tables, new items too": [_update(t, f"S{n:03}", "Art") for t in ("students", "others")
                                             for n in range(250, 350, 2)],
    "a failed condition rolls all back": [*(_update("students", f"S{n:03}", "Art") for n in range(99)),
                                          _update("others", "S000", "Art", condition="major = :m")],
    "two actions on one item roll all back": [_update("students", "S001", "Art"), _update("others", "S001", "Art"),
                                              _update("students", "S001", "Bio")],
}


def test_a_transaction_copies_each_table_once_instead_of_once_per_action(dynamodb_backend, monkeypatch) -> None:
    counting = CountingCopy()
    monkeypatch.setattr(ddb_models, "copy", counting)  # moto's own transaction, counted
    ddb_models.DynamoDBBackend.transact_write_items(dynamodb_backend, TRANSACTIONS["100 updates of one table"])
    assert counting.tables == 100  # the whole table, once per action: what the patch is there for

    counting.tables = 0
    monkeypatch.setattr(ddb_models, "copy", moto_app._COPY)  # patched, counted where the copies are made
    monkeypatch.setattr(moto_app, "copy", counting)
    moto_app.transact_write_items(dynamodb_backend, TRANSACTIONS["100 updates of one table"])
    assert counting.tables == 1
    moto_app.transact_write_items(dynamodb_backend, TRANSACTIONS["updates of two tables, new items too"])
    assert counting.tables == 3  # one copy per table per transaction: nothing kept from the last one


@pytest.mark.parametrize("name", sorted(TRANSACTIONS))
def test_a_patched_transaction_does_what_moto_does(name: str, monkeypatch: pytest.MonkeyPatch) -> None:
    outcomes = []
    for patched in (False, True):
        with mock_aws():
            backend = _two_tables_of_students()  # fresh tables each time
            if patched:
                monkeypatch.setattr(ddb_models, "copy", moto_app._COPY)
                monkeypatch.setattr(ddb_models.DynamoDBBackend, "transact_write_items", moto_app.transact_write_items)
            try:
                backend.transact_write_items(TRANSACTIONS[name])
                error = None
            except Exception as exc:  # noqa: BLE001 - the error is what is compared
                error = (type(exc).__name__, str(exc))
            outcomes.append((error, _items(backend)))
            copied = ddb_models.copy.deepcopy({"a": [1]})  # outside a transaction: the copy module's own
            assert copied == {"a": [1]}
            monkeypatch.undo()
    assert outcomes[0] == outcomes[1]
    if "roll" in name:  # the rollback put back every table as it was
        assert outcomes[0][0] is not None
        assert {row for rows in outcomes[0][1].values() for row in rows} == {("major", str({"S": "Law"}))} | {
            ("name", str({"S": f"S{n:03}"})) for n in range(300)}


# --- (c) the dispatcher does not list moto's modules per request ----------------------------


def _signed(service: str, **kwargs: Any) -> dict[str, Any]:
    auth = (
        f"AWS4-HMAC-SHA256 Credential=testing/20250101/{REGION}/{service}/aws4_request, "
        "SignedHeaders=host;x-amz-date, Signature=0"
    )
    headers = {"Authorization": auth, **kwargs.pop("headers", {})}
    return EnvironBuilder(headers=headers, **kwargs).get_environ()


REQUESTS: dict[str, Callable[[], dict[str, Any]]] = {
    "s3": lambda: _signed("s3", path="/some-bucket/some/key", method="GET"),
    "sqs": lambda: _signed(
        "sqs", path="/", method="POST", data="{}",
        headers={"X-Amz-Target": "AmazonSQS.ListQueues", "Content-Type": "application/x-amz-json-1.0"},
    ),
    "dynamodb": lambda: _signed(
        "dynamodb", path="/", method="POST", data="{}",
        headers={"X-Amz-Target": "DynamoDB_20120810.ListTables", "Content-Type": "application/x-amz-json-1.0"},
    ),
    "moto_api": lambda: EnvironBuilder(path="/moto-api/config", method="GET").get_environ(),
}


@pytest.fixture
def listings(monkeypatch: pytest.MonkeyPatch) -> Iterator[list[int]]:
    """Counts the calls of moto's module listing (the werkzeug app looks it up on the module)."""
    calls = [0]
    listing = moto.backends.list_of_moto_modules

    def counted() -> Any:
        calls[0] += 1
        return listing()

    monkeypatch.setattr(moto.backends, "list_of_moto_modules", counted)
    yield calls


def test_the_module_listing_is_not_called_per_request(listings: list[int]) -> None:
    rounds = 25
    plain = DomainDispatcherApplication(create_backend_app)
    for _ in range(rounds):
        for make_environ in REQUESTS.values():
            plain.get_application(make_environ())
    assert listings[0] >= 3 * rounds  # the counter sees moto's own per-request listing

    listings[0] = 0
    cached = CachedDomainDispatcherApplication(create_backend_app)
    for _ in range(rounds):
        for make_environ in REQUESTS.values():
            cached.get_application(make_environ())
    assert listings[0] <= 3  # once per distinct host (s3, sqs, dynamodb), whatever the number of requests


def test_the_cached_dispatcher_chooses_moto_backend() -> None:
    plain = DomainDispatcherApplication(create_backend_app)
    cached = CachedDomainDispatcherApplication(create_backend_app)
    for name, make_environ in REQUESTS.items():
        for _ in range(2):  # the first (resolved) and a later (remembered) request
            assert cached.get_application(make_environ()).service == plain.get_application(make_environ()).service, name
    for host in (None, "moto_api", "s3", "dynamodb", "sqs.us-east-1.amazonaws.com", "s3.eu-west-1.amazonaws.com",
                 "unknown.example.com"):
        assert cached.get_backend_for_host(host) == plain.get_backend_for_host(host) == cached.get_backend_for_host(host)


def test_the_host_cache_is_bounded(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(moto_app, "HOST_CACHE_LIMIT", 3)
    cached = CachedDomainDispatcherApplication(create_backend_app)
    hosts = [f"sqs.region-{i}.amazonaws.com" for i in range(10)]
    assert [cached.get_backend_for_host(host) for host in hosts] == ["sqs"] * 10
    assert len(cached._backend_by_host) == 3


# --- (b) behaviour through the patched server ------------------------------------------------


@pytest.fixture(scope="module")
def server() -> Iterator[MotoServer]:
    with MotoServer() as running:
        yield running


@pytest.fixture
def endpoint(server: MotoServer) -> str:
    return server.url


def _client(endpoint: str, service: str) -> Any:
    creds = local_credentials_env()
    return boto3.client(
        service,
        endpoint_url=endpoint,
        region_name=REGION,
        aws_access_key_id=creds["AWS_ACCESS_KEY_ID"],
        aws_secret_access_key=creds["AWS_SECRET_ACCESS_KEY"],
        config=Config(s3={"addressing_style": "path"}, retries={"max_attempts": 1}),
    )


def _wait_for(condition: Callable[[], Any], timeout_s: float = 10.0) -> Any:
    """Poll until ``condition`` returns something truthy (the waits of SQS timers are seconds)."""
    deadline = time.monotonic() + timeout_s
    while True:
        result = condition()
        if result or time.monotonic() > deadline:
            return result
        time.sleep(0.2)


def test_the_server_runs_the_patched_app(server: MotoServer) -> None:
    assert server._process is not None
    assert server._process.args[1:3] == ["-m", "iraas.local.moto_app"]
    assert _client(server.url, "sqs").list_queues()["ResponseMetadata"]["HTTPStatusCode"] == 200


@pytest.mark.slow
def test_s3_put_get_head_and_not_found(endpoint: str) -> None:
    s3 = _client(endpoint, "s3")
    s3.create_bucket(Bucket="moto-app-bucket")
    body = random.Random(3).randbytes(100_000)
    s3.put_object(Bucket="moto-app-bucket", Key="inputs/1/photo.jpg", Body=body, ContentType="image/jpeg")
    got = s3.get_object(Bucket="moto-app-bucket", Key="inputs/1/photo.jpg")
    assert got["Body"].read() == body and got["ContentType"] == "image/jpeg"
    head = s3.head_object(Bucket="moto-app-bucket", Key="inputs/1/photo.jpg")
    assert head["ContentLength"] == len(body)
    with pytest.raises(ClientError) as missing:
        s3.get_object(Bucket="moto-app-bucket", Key="results/nope.json")
    assert missing.value.response["Error"]["Code"] == "NoSuchKey"
    with pytest.raises(ClientError) as missing_head:
        s3.head_object(Bucket="moto-app-bucket", Key="results/nope.json")
    assert missing_head.value.response["ResponseMetadata"]["HTTPStatusCode"] == 404
    # The first answer is final: If-None-Match: * refuses a second write.
    s3.put_object(Bucket="moto-app-bucket", Key="results/1.json", Body=b"{}", IfNoneMatch="*")
    with pytest.raises(ClientError) as taken:
        s3.put_object(Bucket="moto-app-bucket", Key="results/1.json", Body=b"{}", IfNoneMatch="*")
    assert taken.value.response["ResponseMetadata"]["HTTPStatusCode"] == 412


def _depth(sqs: Any, url: str) -> dict[str, int]:
    attrs = sqs.get_queue_attributes(
        QueueUrl=url,
        AttributeNames=["ApproximateNumberOfMessages", "ApproximateNumberOfMessagesNotVisible",
                        "ApproximateNumberOfMessagesDelayed"],
    )["Attributes"]
    return {name.removeprefix("ApproximateNumberOfMessages") or "Visible": int(value) for name, value in attrs.items()}


@pytest.mark.slow
def test_sqs_send_receive_visibility_receive_count_and_delete(endpoint: str) -> None:
    sqs = _client(endpoint, "sqs")
    url = sqs.create_queue(QueueName="moto-app-requests", Attributes={"VisibilityTimeout": "60"})["QueueUrl"]
    sent = sqs.send_message_batch(
        QueueUrl=url, Entries=[{"Id": str(i), "MessageBody": f'{{"id": "{i}"}}'} for i in range(3)]
    )
    assert len(sent["Successful"]) == 3
    assert _depth(sqs, url) == {"Visible": 3, "NotVisible": 0, "Delayed": 0}

    first = sqs.receive_message(QueueUrl=url, MaxNumberOfMessages=10, WaitTimeSeconds=0, VisibilityTimeout=1,
                                AttributeNames=["All"])["Messages"]
    assert sorted(m["Body"] for m in first) == ['{"id": "0"}', '{"id": "1"}', '{"id": "2"}']
    assert {m["Attributes"]["ApproximateReceiveCount"] for m in first} == {"1"}
    assert _depth(sqs, url) == {"Visible": 0, "NotVisible": 3, "Delayed": 0}
    # Hidden while their visibility timeout runs: nothing to receive.
    assert "Messages" not in sqs.receive_message(QueueUrl=url, MaxNumberOfMessages=10, WaitTimeSeconds=0)

    # Extend one (as the worker does while it works on a batch), let the others come back.
    keep = first[0]
    sqs.change_message_visibility_batch(
        QueueUrl=url, Entries=[{"Id": "0", "ReceiptHandle": keep["ReceiptHandle"], "VisibilityTimeout": 60}]
    )

    def again() -> list[dict[str, Any]]:
        return sqs.receive_message(QueueUrl=url, MaxNumberOfMessages=10, WaitTimeSeconds=0,
                                   AttributeNames=["All"]).get("Messages", [])

    second = _wait_for(again)
    second += again() if len(second) < 2 else []
    assert sorted(m["MessageId"] for m in second) == sorted(m["MessageId"] for m in first[1:])
    assert {m["Attributes"]["ApproximateReceiveCount"] for m in second} == {"2"}
    assert _depth(sqs, url) == {"Visible": 0, "NotVisible": 3, "Delayed": 0}

    # Only the newest receipt handles are asked for; every copy is deleted.
    deleted = sqs.delete_message_batch(
        QueueUrl=url, Entries=[{"Id": str(i), "ReceiptHandle": m["ReceiptHandle"]} for i, m in enumerate(second + [keep])]
    )
    assert len(deleted["Successful"]) == 3 and not deleted.get("Failed")
    assert _depth(sqs, url) == {"Visible": 0, "NotVisible": 0, "Delayed": 0}


@pytest.mark.slow
def test_sqs_delay(endpoint: str) -> None:
    sqs = _client(endpoint, "sqs")
    url = sqs.create_queue(QueueName="moto-app-delayed")["QueueUrl"]
    sqs.send_message(QueueUrl=url, MessageBody="later", DelaySeconds=1)
    assert _depth(sqs, url) == {"Visible": 0, "NotVisible": 0, "Delayed": 1}
    assert "Messages" not in sqs.receive_message(QueueUrl=url, WaitTimeSeconds=0)
    got = _wait_for(lambda: sqs.receive_message(QueueUrl=url, WaitTimeSeconds=0).get("Messages"))
    assert [m["Body"] for m in got] == ["later"]


@pytest.mark.slow
def test_sqs_redrive_to_the_dead_letter_queue_after_max_receive_count(endpoint: str) -> None:
    sqs = _client(endpoint, "sqs")
    dlq = sqs.create_queue(QueueName="moto-app-dlq", Attributes={"MessageRetentionPeriod": "1209600"})["QueueUrl"]
    dlq_arn = sqs.get_queue_attributes(QueueUrl=dlq, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
    url = sqs.create_queue(
        QueueName="moto-app-redriven",
        Attributes={"RedrivePolicy": json.dumps({"deadLetterTargetArn": dlq_arn, "maxReceiveCount": "3"})},
    )["QueueUrl"]
    attrs = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["All"])["Attributes"]
    redrive = json.loads(attrs["RedrivePolicy"])
    assert redrive["deadLetterTargetArn"] == dlq_arn and int(redrive["maxReceiveCount"]) == 3
    sqs.send_message(QueueUrl=url, MessageBody="poison")
    counts = []
    for _ in range(3):  # three failed attempts: received, never deleted, back at once
        got = sqs.receive_message(QueueUrl=url, WaitTimeSeconds=0, VisibilityTimeout=0,
                                  AttributeNames=["ApproximateReceiveCount"])["Messages"]
        counts.append(got[0]["Attributes"]["ApproximateReceiveCount"])
    assert counts == ["1", "2", "3"]
    # The next receive moves it to the dead-letter queue instead of handing it out a fourth time.
    assert "Messages" not in sqs.receive_message(QueueUrl=url, WaitTimeSeconds=0)
    assert _depth(sqs, url) == {"Visible": 0, "NotVisible": 0, "Delayed": 0}
    dead = sqs.receive_message(QueueUrl=dlq, WaitTimeSeconds=0)["Messages"]
    assert [m["Body"] for m in dead] == ["poison"]


@pytest.mark.slow
def test_a_long_poll_whose_client_has_gone_takes_nothing(endpoint: str) -> None:
    """Receives given up by their clients (a worker stopped or killed in its long poll) do not
    take the next message for nobody: the live receiver gets it, on its first receive."""
    sqs = _client(endpoint, "sqs")
    url = sqs.create_queue(QueueName="moto-app-abandoned", Attributes={"VisibilityTimeout": "30"})["QueueUrl"]
    body = f"Action=ReceiveMessage&QueueUrl={urllib.parse.quote(url, safe='')}&WaitTimeSeconds=20&MaxNumberOfMessages=10"
    for _ in range(3):  # raw long polls, their connections closed at once, as a killed process's are
        host, port = urllib.parse.urlparse(endpoint).netloc.split(":")
        with socket.create_connection((host, int(port))) as conn:
            conn.sendall(
                f"POST / HTTP/1.1\r\nHost: {host}:{port}\r\nContent-Type: application/x-www-form-urlencoded\r\n"
                f"Authorization: AWS4-HMAC-SHA256 Credential=testing/20261201/{sqs.meta.region_name}/sqs/aws4_request, "
                f"SignedHeaders=host, Signature=0\r\nContent-Length: {len(body)}\r\n\r\n{body}".encode()
            )
            time.sleep(0.2)  # the server has it and waits
    time.sleep(1.5)  # each abandoned poll wakes up at least once and sees its client gone
    sqs.send_message(QueueUrl=url, MessageBody="for the live worker")
    got = sqs.receive_message(QueueUrl=url, WaitTimeSeconds=5, AttributeNames=["ApproximateReceiveCount"])
    assert [(m["Body"], m["Attributes"]["ApproximateReceiveCount"]) for m in got["Messages"]] == [
        ("for the live worker", "1")
    ]


@pytest.mark.slow
def test_sqs_errors_are_moto_errors(endpoint: str) -> None:
    sqs = _client(endpoint, "sqs")
    url = sqs.create_queue(QueueName="moto-app-errors")["QueueUrl"]
    with pytest.raises(ClientError) as bad_name:
        sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["NoSuchAttribute"])
    assert "InvalidAttributeName" in bad_name.value.response["Error"]["Code"]
    with pytest.raises(ClientError) as missing:
        sqs.get_queue_attributes(QueueUrl=f"{endpoint}/{ACCOUNT}/no-such-queue", AttributeNames=["All"])
    assert "NonExistentQueue" in missing.value.response["Error"]["Code"] or "QueueDoesNotExist" in str(missing.value)


def _table(dynamodb: Any, name: str, key: str) -> None:
    """An on-demand table keyed by the string ``key``."""
    dynamodb.create_table(
        TableName=name,
        KeySchema=[{"AttributeName": key, "KeyType": "HASH"}],
        AttributeDefinitions=[{"AttributeName": key, "AttributeType": "S"}],
        BillingMode="PAY_PER_REQUEST",
    )


@pytest.mark.slow
def test_dynamodb_put_get(endpoint: str) -> None:
    dynamodb = _client(endpoint, "dynamodb")
    _table(dynamodb, "moto-app-table", "id")
    dynamodb.put_item(TableName="moto-app-table", Item={"id": {"S": "a"}, "n": {"N": "2"}})
    item = dynamodb.get_item(TableName="moto-app-table", Key={"id": {"S": "a"}})["Item"]
    assert item == {"id": {"S": "a"}, "n": {"N": "2"}}
    assert "Item" not in dynamodb.get_item(TableName="moto-app-table", Key={"id": {"S": "b"}})


@pytest.mark.slow
def test_dynamodb_transactions_commit_and_roll_back(endpoint: str) -> None:
    dynamodb = _client(endpoint, "dynamodb")
    _table(dynamodb, "moto-app-students", "name")
    dynamodb.put_item(TableName="moto-app-students", Item={"name": {"S": "S000"}, "faces": {"BS": [b"\x01"]}})
    dynamodb.transact_write_items(TransactItems=[_update("moto-app-students", f"S{n:03}", "Law") for n in range(100)])
    assert dynamodb.get_item(TableName="moto-app-students", Key={"name": {"S": "S000"}})["Item"] == {
        "name": {"S": "S000"}, "faces": {"BS": [b"\x01"]}, "major": {"S": "Law"}}
    with pytest.raises(ClientError) as cancelled:
        dynamodb.transact_write_items(TransactItems=[
            _update("moto-app-students", "S001", "Art"), _update("moto-app-students", "S002", "Art", "major = :m")])
    assert cancelled.value.response["Error"]["Code"] == "TransactionCanceledException"
    assert [r["Code"] for r in cancelled.value.response["CancellationReasons"]] == ["None", "ConditionalCheckFailed"]
    items = dynamodb.scan(TableName="moto-app-students")["Items"]
    assert len(items) == 100 and {i["major"]["S"] for i in items} == {"Law"}  # S001 rolled back
