"""iraas/queues.py's BatchSender against moto: concurrent sends share SendMessageBatch calls and each
body arrives once; with no linger each message goes alone; an unreachable queue is an error for
every sender of the batch. Calls are counted with botocore's event hooks.

An entry SQS refuses, which moto never does, is in tests/unit/test_queues.py (botocore's Stubber).
"""

from __future__ import annotations

import threading
from collections import Counter
from concurrent.futures import ThreadPoolExecutor

import boto3
import pytest
from botocore.config import Config

from harness.embedded import free_port
from iraas import aws
from iraas.queues import BATCH_LIMIT, BatchSender, SendError


@pytest.fixture
def sqs(stack):
    """The shared SQS client, on moto."""
    return aws.client(stack, "sqs")


@pytest.fixture
def queue(sqs) -> str:
    """A queue of the test's own."""
    return sqs.create_queue(QueueName="batch-sender")["QueueUrl"]


def calls(client) -> Counter[str]:
    """Every call the client makes, by operation."""
    seen: Counter[str] = Counter()
    client.meta.events.register("before-call.sqs", lambda event_name, **_: seen.update([event_name.rsplit(".", 1)[1]]))
    return seen


def batch_sizes(client) -> list[int]:
    """The entries of each SendMessageBatch call."""
    sizes: list[int] = []
    client.meta.events.register(
        "provide-client-params.sqs.SendMessageBatch", lambda params, **_: sizes.append(len(params["Entries"]))
    )
    return sizes


def received(client, queue: str) -> list[str]:
    """Every message on the queue (taken off it)."""
    bodies = []
    while messages := client.receive_message(QueueUrl=queue, MaxNumberOfMessages=BATCH_LIMIT).get("Messages", []):
        bodies += [m["Body"] for m in messages]
        client.delete_message_batch(
            QueueUrl=queue, Entries=[{"Id": str(i), "ReceiptHandle": m["ReceiptHandle"]} for i, m in enumerate(messages)]
        )
    return bodies


def test_a_burst_of_sends_goes_out_in_full_batches_each_body_once(sqs, queue):
    sender = BatchSender(sqs, queue, linger_s=0.05)
    bodies = [f"m{i}" for i in range(35)]
    barrier = threading.Barrier(len(bodies))
    counted, sizes = calls(sqs), batch_sizes(sqs)

    def send(body: str) -> None:
        barrier.wait()
        sender.send(body)

    with ThreadPoolExecutor(max_workers=len(bodies)) as pool:
        list(pool.map(send, bodies))

    assert set(counted) == {"SendMessageBatch"}  # never one SendMessage each
    assert counted["SendMessageBatch"] <= 6 and sum(sizes) == 35  # 35 in batches of up to 10, not 35 calls
    assert sorted(received(sqs, queue)) == sorted(bodies)


def test_without_linger_each_message_is_sent_alone_with_no_thread(sqs, queue):
    counted = calls(sqs)
    threads = threading.active_count()

    BatchSender(sqs, queue, linger_s=0).send("one")

    assert counted == {"SendMessage": 1} and threading.active_count() == threads
    assert received(sqs, queue) == ["one"]


def test_close_stops_the_senders_threads_and_a_later_send_starts_them_again(sqs, queue):
    before = {t.ident for t in threading.enumerate()}
    sender = BatchSender(sqs, queue, linger_s=0.01)
    sender.send("one")
    assert {t.name for t in threading.enumerate() if t.ident not in before} >= {"sqs-batch"}

    sender.close()
    assert [t.name for t in threading.enumerate() if t.ident not in before] == []

    sender.send("two")
    sender.close()
    assert sorted(received(sqs, queue)) == ["one", "two"]


def test_an_unreachable_queue_is_an_error_for_every_sender_of_the_batch(aws_credentials):
    # Nothing listens on the port; one attempt, so that the test does not wait out the retries.
    url = f"http://127.0.0.1:{free_port()}"
    sqs = boto3.client("sqs", endpoint_url=url, region_name="us-east-1",
                       config=Config(retries={"max_attempts": 1, "mode": "standard"}, connect_timeout=2))
    sender = BatchSender(sqs, f"{url}/123456789012/requests", linger_s=30)  # a full batch goes at once
    barrier = threading.Barrier(BATCH_LIMIT)

    def send(body: str) -> str:
        barrier.wait()
        with pytest.raises(SendError) as failed:
            sender.send(body)
        return f"{failed.value} (unavailable: {failed.value.unavailable})"

    with ThreadPoolExecutor(max_workers=BATCH_LIMIT) as pool:
        errors = list(pool.map(send, [f"m{i}" for i in range(BATCH_LIMIT)]))

    assert all("Could not connect to the endpoint URL" in e and e.endswith("(unavailable: True)") for e in errors), errors[0]
