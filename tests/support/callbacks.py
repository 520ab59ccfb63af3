"""Running the callback sender as its event source does (receive, handle, delete what it settled)."""

from __future__ import annotations

import time
from typing import Any

from iraas.callbacks.sender import CallbackSender


def run_event_source(sender: CallbackSender, sqs: Any, queue: str, quiet_s: float = 4.0) -> dict[str, int]:
    """Receive and handle until the queue stays empty for ``quiet_s`` (delayed retries included);
    the jobs delivered, retried and failed in all."""
    totals = {"delivered": 0, "retried": 0, "failed": 0}
    quiet_until = time.monotonic() + quiet_s
    while time.monotonic() < quiet_until:
        messages = sqs.receive_message(QueueUrl=queue, MaxNumberOfMessages=10, WaitTimeSeconds=1).get("Messages", [])
        if not messages:
            continue
        outcome = sender.handle([(m["MessageId"], m["Body"]) for m in messages])
        for name, count in outcome.counts.items():
            totals[name] += count
        for message in messages:
            if message["MessageId"] not in outcome.unsettled:
                sqs.delete_message(QueueUrl=queue, ReceiptHandle=message["ReceiptHandle"])
        quiet_until = time.monotonic() + quiet_s
    return totals
