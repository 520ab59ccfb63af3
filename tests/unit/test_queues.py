"""Concurrent sends share SendMessageBatch calls, and each sender learns its own outcome."""

from __future__ import annotations

import threading
from concurrent.futures import ThreadPoolExecutor

import pytest

from iraas.queues import BATCH_LIMIT, BatchSender, SendError


class FakeSQS:
    """Records batch calls; refuses bodies that start with "bad"."""

    def __init__(self) -> None:
        self.batches: list[list[str]] = []
        self.singles: list[str] = []
        self._lock = threading.Lock()

    def send_message_batch(self, QueueUrl: str, Entries: list[dict]) -> dict:  # noqa: N803
        assert 1 <= len(Entries) <= BATCH_LIMIT
        with self._lock:
            self.batches.append([e["MessageBody"] for e in Entries])
        failed = [{"Id": e["Id"], "Code": "InvalidMessageContents", "Message": "no"}
                  for e in Entries if e["MessageBody"].startswith("bad")]
        return {"Failed": failed} if failed else {}

    def send_message(self, QueueUrl: str, MessageBody: str) -> dict:  # noqa: N803
        self.singles.append(MessageBody)
        return {}


def test_a_burst_of_sends_goes_out_in_full_batches_each_body_once():
    sqs = FakeSQS()
    sender = BatchSender(sqs, "q", linger_s=0.05)
    bodies = [f"m{i}" for i in range(35)]
    barrier = threading.Barrier(len(bodies))

    def send(body: str) -> None:
        barrier.wait()
        sender.send(body)

    with ThreadPoolExecutor(max_workers=len(bodies)) as pool:
        list(pool.map(send, bodies))

    assert sorted(b for batch in sqs.batches for b in batch) == sorted(bodies)
    assert len(sqs.batches) <= 6  # 35 in batches of up to 10, not 35 calls


def test_a_refused_message_fails_only_its_own_sender():
    sqs = FakeSQS()
    sender = BatchSender(sqs, "q", linger_s=0.05)
    outcomes: dict[str, str] = {}
    barrier = threading.Barrier(3)

    def send(body: str) -> None:
        barrier.wait()
        try:
            sender.send(body)
            outcomes[body] = "sent"
        except SendError as exc:
            outcomes[body] = str(exc)

    with ThreadPoolExecutor(max_workers=3) as pool:
        list(pool.map(send, ["ok1", "bad", "ok2"]))

    assert outcomes["ok1"] == outcomes["ok2"] == "sent"
    assert "InvalidMessageContents" in outcomes["bad"]


def test_without_linger_each_message_is_sent_alone_with_no_thread():
    sqs = FakeSQS()
    BatchSender(sqs, "q", linger_s=0).send("one")
    assert sqs.singles == ["one"] and sqs.batches == []


def test_an_unreachable_queue_is_an_error_for_every_sender_of_the_batch():
    class Down(FakeSQS):
        def send_message_batch(self, QueueUrl: str, Entries: list[dict]) -> dict:  # noqa: N803
            raise ConnectionError("endpoint down")

    with pytest.raises(SendError, match="endpoint down"):
        BatchSender(Down(), "q", linger_s=0.01).send("x")
