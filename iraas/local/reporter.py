"""What ``iraas up`` prints while it runs: one line per answered request, from the response queue."""

from __future__ import annotations

import contextlib
import json
import threading
from collections.abc import Callable
from typing import Any

from iraas.aws import Backoff
from iraas.queues import entry_batches


def describe(result: dict[str, Any]) -> str:
    """``  4f3c1a2b cat.jpg: tabby (0.24)``, or the reason a request failed."""
    head = f"  {str(result.get('id', ''))[:8]} {result.get('name')}"
    if result.get("status") == "done":
        return f"{head}: {result.get('label')} ({float(result.get('confidence') or 0):.2f})"
    return f"{head}: failed, {result.get('error', {}).get('message')}"


def report_results(sqs: Any, queue_url: str, say: Callable[[str], None], stopping: threading.Event) -> None:
    """Drain the response queue until ``stopping``, saying one line per result."""
    backoff = Backoff()
    while not stopping.is_set():
        try:
            messages = sqs.receive_message(QueueUrl=queue_url, MaxNumberOfMessages=10, WaitTimeSeconds=1).get(
                "Messages", []
            )
        except Exception:  # noqa: BLE001 - the endpoint is away (stopping, or restarting): wait
            if stopping.is_set():
                return
            backoff.sleep(stopping.is_set)
            continue
        backoff.reset()
        for message in messages:
            try:
                say(describe(json.loads(message["Body"])))
            except (ValueError, TypeError, AttributeError):
                say(f"  (a response that is not a result: {message['Body'][:80]!r})")
        for entries in entry_batches([m["ReceiptHandle"] for m in messages]):
            with contextlib.suppress(Exception):  # a line said twice, later, is all it costs
                sqs.delete_message_batch(QueueUrl=queue_url, Entries=entries)
