"""The local function runner retries a failing event as Lambda does, then drops it.

``serve`` runs for real, in the main thread (it installs signal handlers), with a handler file
written here. SQS is the edge, faked in memory with time skipped: a message the runner makes
visible again is visible on the next receive, instead of after the runner's 2 s. When nothing is
left to receive, the fake sends SIGTERM, as ``iraas up`` does when it stops, and ``serve`` returns.
"""

from __future__ import annotations

import json
import signal
import uuid
from collections import Counter
from pathlib import Path

import pytest

from iraas import aws
from iraas.local import lambda_runner

QUEUE_URL = "https://sqs.us-east-1.amazonaws.com/123456789012/resize-events"

HANDLER = """
import pathlib

def lambda_handler(event, context):
    key = event["Records"][0]["s3"]["object"]["key"]
    with pathlib.Path({calls!r}).open("a") as f:
        f.write(key + "\\n")
    if key == "broken.jpg":
        raise RuntimeError("cannot read broken.jpg")
"""


class FakeSQS:
    """One queue; a received message stays in flight until it is deleted or made visible again."""

    def __init__(self, bodies: list[str]) -> None:
        self.messages = {str(i): {"Body": b, "receives": 0, "visible": True, "handle": None} for i, b in enumerate(bodies)}
        self.receive_calls = 0

    def receive_message(self, QueueUrl: str, MaxNumberOfMessages: int = 1, **kwargs) -> dict:  # noqa: N803
        assert QueueUrl == QUEUE_URL
        self.receive_calls += 1
        assert self.receive_calls < 50, "the runner kept receiving"  # a regression fails, not hangs
        wanted = {*kwargs.get("AttributeNames", ()), *kwargs.get("MessageSystemAttributeNames", ())}
        out = []
        for message_id, m in self.messages.items():
            if m["visible"] and len(out) < MaxNumberOfMessages:
                m.update(visible=False, receives=m["receives"] + 1, handle=str(uuid.uuid4()))
                message = {"MessageId": message_id, "Body": m["Body"], "ReceiptHandle": m["handle"]}
                if wanted & {"ApproximateReceiveCount", "All"}:
                    message["Attributes"] = {"ApproximateReceiveCount": str(m["receives"])}
                out.append(message)
        if not out:
            signal.raise_signal(signal.SIGTERM)  # nothing left to do: stop the runner
        return {"Messages": out} if out else {}

    def _current(self, handle: str) -> str:
        return next(i for i, m in self.messages.items() if m["handle"] == handle)  # else: invalid handle

    def change_message_visibility(self, QueueUrl: str, ReceiptHandle: str, VisibilityTimeout: int) -> None:  # noqa: N803
        # A retry's short delay passes at once; the function's timeout does not pass in this test.
        self.messages[self._current(ReceiptHandle)]["visible"] = VisibilityTimeout <= 2

    def delete_message(self, QueueUrl: str, ReceiptHandle: str) -> None:  # noqa: N803
        del self.messages[self._current(ReceiptHandle)]


def _s3_event(key: str) -> str:
    return json.dumps({"Records": [{"eventSource": "aws:s3", "s3": {"bucket": {"name": "in"}, "object": {"key": key}}}]})


@pytest.fixture
def restore_signal_handlers():
    saved = {s: signal.getsignal(s) for s in (signal.SIGTERM, signal.SIGINT)}
    yield
    for s, handler in saved.items():
        signal.signal(s, handler)


def test_a_failing_event_is_tried_three_times_then_dropped_and_a_good_one_once(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, restore_signal_handlers: None
) -> None:
    calls = tmp_path / "calls.txt"
    handler = tmp_path / "handler.py"
    handler.write_text(HANDLER.format(calls=str(calls)))
    sqs = FakeSQS([_s3_event("broken.jpg"), _s3_event("good.jpg")])
    monkeypatch.setenv("IRAAS_HOME", str(tmp_path / "home"))
    monkeypatch.setenv("IRAAS_REGION", "us-east-1")
    monkeypatch.delenv("IRAAS_ENDPOINT_URL", raising=False)
    monkeypatch.delenv("IRAAS_FACE_ENGINE", raising=False)
    monkeypatch.setattr(aws, "client", lambda _settings, service: {"sqs": sqs}[service])

    lambda_runner.serve(QUEUE_URL, f"{handler}:lambda_handler", "resize", timeout_s=30, ready_file=None)

    # Lambda's asynchronous invocation: the first try and two retries, then the event is dropped.
    assert Counter(calls.read_text().split()) == {"broken.jpg": 3, "good.jpg": 1}
    assert sqs.messages == {}  # both deleted: nothing is retried forever or left in flight
