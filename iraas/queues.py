"""SQS facts shared by the web tier, the worker, the scaler and the embedded stack."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any

BATCH_LIMIT = 10  # entries per SQS batch call, and messages per receive

# The query protocol and the JSON protocol name a missing queue differently.
NO_SUCH_QUEUE = frozenset({"AWS.SimpleQueueService.NonExistentQueue", "QueueDoesNotExist"})


@dataclass(frozen=True)
class QueueDepth:
    visible: int  # waiting to be received
    in_flight: int  # received, not yet deleted

    @property
    def queued(self) -> int:
        return self.visible + self.in_flight


def queue_depth(sqs: Any, url: str) -> QueueDepth:
    """The queue's approximate depth (one GetQueueAttributes call)."""
    attrs = sqs.get_queue_attributes(
        QueueUrl=url,
        AttributeNames=["ApproximateNumberOfMessages", "ApproximateNumberOfMessagesNotVisible"],
    )["Attributes"]
    return QueueDepth(
        visible=int(attrs.get("ApproximateNumberOfMessages", 0)),
        in_flight=int(attrs.get("ApproximateNumberOfMessagesNotVisible", 0)),
    )


def entry_batches(receipts: list[str], **fields: Any) -> Iterator[list[dict[str, Any]]]:
    """Batch-call entries (delete, change visibility) for ``receipts``, ``BATCH_LIMIT`` per call."""
    for start in range(0, len(receipts), BATCH_LIMIT):
        chunk = receipts[start : start + BATCH_LIMIT]
        yield [{"Id": str(i), "ReceiptHandle": receipt, **fields} for i, receipt in enumerate(chunk)]


def send_batches(sqs: Any, url: str, bodies: list[str]) -> list[str]:
    """Send ``bodies`` with SendMessageBatch, ``BATCH_LIMIT`` per call; returns the failures' reasons."""
    return list(send_each(sqs, url, bodies).values())


def send_each(sqs: Any, url: str, bodies: list[str]) -> dict[int, str]:
    """Send ``bodies`` with SendMessageBatch, ``BATCH_LIMIT`` per call; returns the index of each
    body SQS did not take, with the reason (a call that fails raises)."""
    failed: dict[int, str] = {}
    for start in range(0, len(bodies), BATCH_LIMIT):
        chunk = bodies[start : start + BATCH_LIMIT]
        response = sqs.send_message_batch(
            QueueUrl=url, Entries=[{"Id": str(i), "MessageBody": body} for i, body in enumerate(chunk)]
        )
        for failure in response.get("Failed", []):
            failed[start + int(failure["Id"])] = f"{failure.get('Code')}: {failure.get('Message')}"
    return failed


class SendError(RuntimeError):
    """SQS did not take a message. ``unavailable``: for a reason that passes (SQS unreachable,
    throttling, its own fault), so the client may try again."""

    def __init__(self, message: str, unavailable: bool = False) -> None:
        super().__init__(message)
        self.unavailable = unavailable


class _Pending:
    def __init__(self, body: str) -> None:
        self.body = body
        self.done = threading.Event()
        self.error: str | None = None
        self.cause: BaseException | None = None  # the exception of a failed call
        self.sender_fault = False  # SQS refused this entry itself (too long, bad characters)


class BatchSender:
    """Gathers concurrent sends to one queue into SendMessageBatch calls.

    A burst of requests in one web process each wants one SendMessage. Here each sender queues its
    message and waits; one flusher thread gathers what arrives within ``linger_s`` (or until
    ``BATCH_LIMIT`` are waiting) and sends it in one call, then wakes each sender with its own
    outcome. ``linger_s=0`` sends each message alone, with no thread (one request at a time: Lambda).
    """

    def __init__(self, sqs: Any, url: str, linger_s: float = 0.005, timeout_s: float = 60.0) -> None:
        self.sqs, self.url, self.linger_s, self.timeout_s = sqs, url, linger_s, timeout_s
        self._cond = threading.Condition()
        self._pending: list[_Pending] = []
        self._thread: threading.Thread | None = None
        self._pool: ThreadPoolExecutor | None = None  # made with the thread, on first use

    def send(self, body: str) -> None:
        """Send one message; returns once SQS has it, raises SendError if it did not take it."""
        if self.linger_s <= 0:
            self.sqs.send_message(QueueUrl=self.url, MessageBody=body)
            return
        entry = _Pending(body)
        with self._cond:
            self._pending.append(entry)
            if self._thread is None:  # started on first use, so a forked process gets its own
                self._pool = ThreadPoolExecutor(max_workers=4, thread_name_prefix="sqs-send")
                self._thread = threading.Thread(target=self._gather, args=(self._pool,), name="sqs-batch", daemon=True)
                self._thread.start()
            self._cond.notify_all()
        if not entry.done.wait(self.timeout_s):
            raise SendError(f"no answer from SQS within {self.timeout_s:g} s", unavailable=True)
        if entry.error:
            raise SendError(
                f"SQS did not take the message: {entry.error}", unavailable=not entry.sender_fault
            ) from entry.cause

    def close(self, timeout_s: float = 5.0) -> None:
        """Send what is waiting, then stop the gathering thread and its pool (a later ``send``
        starts them again). A web process never needs this; a test that makes many senders does."""
        with self._cond:
            thread, pool = self._thread, self._pool
            self._thread = self._pool = None
            self._cond.notify_all()
        if thread is not None:
            thread.join(timeout_s)
        if pool is not None:
            pool.shutdown(wait=True)

    def _gather(self, pool: ThreadPoolExecutor) -> None:
        me = threading.current_thread()
        while True:
            with self._cond:
                self._cond.wait_for(lambda: bool(self._pending) or self._thread is not me)
                if not self._pending:  # closed, with nothing left to send
                    return
                self._cond.wait_for(lambda: len(self._pending) >= BATCH_LIMIT, timeout=self.linger_s)
                batch, self._pending = self._pending[:BATCH_LIMIT], self._pending[BATCH_LIMIT:]
            pool.submit(self._flush, batch)

    def _flush(self, batch: list[_Pending]) -> None:
        try:
            response = self.sqs.send_message_batch(
                QueueUrl=self.url, Entries=[{"Id": str(i), "MessageBody": e.body} for i, e in enumerate(batch)]
            )
            for failure in response.get("Failed", []):
                entry = batch[int(failure["Id"])]
                entry.error = f"{failure.get('Code')}: {failure.get('Message')}"
                entry.sender_fault = bool(failure.get("SenderFault"))
        except Exception as exc:  # noqa: BLE001 - every sender of the batch gets the reason
            for e in batch:
                e.error, e.cause = str(exc) or type(exc).__name__, exc
        finally:
            for e in batch:
                e.done.set()
