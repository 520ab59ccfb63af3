"""What ``iraas up`` prints while it runs: one line per answered request, from the response queue."""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Callable
from typing import Any

from iraas.queues import entry_batches


def describe(result: dict[str, Any]) -> str:
    """``  4f3c1a2b cat.jpg: tabby (0.24)``, or the reason a request failed."""
    head = f"  {str(result.get('id', ''))[:8]} {result.get('name')}"
    if result.get("status") == "done":
        return f"{head}: {result.get('label')} ({float(result.get('confidence') or 0):.2f})"
    return f"{head}: failed, {result.get('error', {}).get('message')}"


def report_results(sqs: Any, queue_url: str, say: Callable[[str], None], stopping: threading.Event) -> None:
    """Drain the response queue until ``stopping``, saying one line per result."""
    while not stopping.is_set():
        try:
            messages = sqs.receive_message(QueueUrl=queue_url, MaxNumberOfMessages=10, WaitTimeSeconds=1).get(
                "Messages", []
            )
        except Exception:  # noqa: BLE001 - the endpoint is going away during shutdown
            if stopping.is_set():
                return
            time.sleep(1)
            continue
        for message in messages:
            try:
                say(describe(json.loads(message["Body"])))
            except (ValueError, TypeError, AttributeError):
                say(f"  (a response that is not a result: {message['Body'][:80]!r})")
        for entries in entry_batches([m["ReceiptHandle"] for m in messages]):
            sqs.delete_message_batch(QueueUrl=queue_url, Entries=entries)
