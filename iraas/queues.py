"""SQS facts shared by the web tier, the worker, the scaler and the embedded stack."""

from __future__ import annotations

from collections.abc import Iterator
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
