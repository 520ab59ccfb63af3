"""iraas/local/lambda_runner.py retries a failing event as Lambda does, then drops it, against moto.

``serve`` runs for real, with a handler file written here and its function's event queue on moto
in-process. A failed event becomes visible again after the runner's 2 s, so this takes a few seconds.
When both events are deleted, the test tells ``serve`` to stop, as the SIGTERM of ``iraas up`` does:
through the stop flag its signal handler sets (``_stop_on_signals``), not with a real signal, which
this long-lived pytest process, with the threads earlier tests leave, would take too (a runner's
real SIGTERM is tested on runner processes in test_functions.py). Every SQS call is counted with
botocore's event hooks.
"""

from __future__ import annotations

import json
import threading
from collections import Counter
from pathlib import Path

import pytest

from iraas import aws
from iraas.classroom.settings import load_face_settings
from iraas.local import lambda_runner
from iraas.queues import queue_depth

HANDLER = """
import pathlib

def lambda_handler(event, context):
    key = event["Records"][0]["s3"]["object"]["key"]
    with pathlib.Path({calls!r}).open("a") as f:
        f.write(key + "\\n")
    if key == "broken.jpg":
        raise RuntimeError("cannot read broken.jpg")
"""
MAX_RECEIVES = 30  # a regression stops the runner, not the test suite


def _s3_event(key: str) -> str:
    return json.dumps({"Records": [{"eventSource": "aws:s3", "s3": {"bucket": {"name": "in"}, "object": {"key": key}}}]})


@pytest.fixture
def stop(monkeypatch: pytest.MonkeyPatch) -> threading.Event:
    """Set it to stop ``serve``, as its SIGTERM handler would."""
    stopping = threading.Event()
    monkeypatch.setattr(lambda_runner, "_stop_on_signals", lambda: stopping.is_set)
    return stopping


def test_a_failing_event_is_tried_three_times_then_dropped_and_a_good_one_once(
    stack, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, stop: threading.Event
) -> None:
    calls = tmp_path / "calls.txt"
    handler = tmp_path / "handler.py"
    handler.write_text(HANDLER.format(calls=str(calls)))
    monkeypatch.delenv("IRAAS_FACE_ENGINE", raising=False)
    sqs = aws.client(load_face_settings(), "sqs")  # the client serve uses
    queue = sqs.create_queue(QueueName="resize-events")["QueueUrl"]
    for key in ("broken.jpg", "good.jpg"):
        sqs.send_message(QueueUrl=queue, MessageBody=_s3_event(key))
    seen: Counter[str] = Counter()

    def count(event_name: str, **_: object) -> None:
        seen[event_name.rsplit(".", 1)[1]] += 1
        if seen["DeleteMessage"] == 2 or seen["ReceiveMessage"] > MAX_RECEIVES:
            stop.set()  # both events done (or a runner that never stops): stop it

    sqs.meta.events.register("after-call.sqs", count)

    lambda_runner.serve(queue, f"{handler}:lambda_handler", "resize", timeout_s=30, ready_file=None)

    # Lambda's asynchronous invocation: the first try and two retries, then the event is dropped.
    assert Counter(calls.read_text().split()) == {"broken.jpg": 3, "good.jpg": 1}
    assert seen["DeleteMessage"] == 2 and seen["ReceiveMessage"] <= MAX_RECEIVES
    assert queue_depth(sqs, queue).queued == 0  # both deleted: nothing is retried forever or left in flight


SQS_HANDLER = """
import pathlib

def lambda_handler(event, context):
    record = event["Records"][0]
    with pathlib.Path({calls!r}).open("a") as f:
        f.write(record["attributes"]["ApproximateReceiveCount"] + "\\n")
    if record["attributes"]["ApproximateReceiveCount"] == "1":  # as ReportBatchItemFailures reports one
        return {{"batchItemFailures": [{{"itemIdentifier": record["messageId"]}}]}}
    return {{"batchItemFailures": []}}
"""


def test_a_message_the_handler_reports_failed_is_kept_and_received_again(
    stack, tmp_path: Path, stop: threading.Event
) -> None:
    calls = tmp_path / "calls.txt"
    handler = tmp_path / "handler.py"
    handler.write_text(SQS_HANDLER.format(calls=str(calls)))
    sqs = aws.client(load_face_settings(), "sqs")
    queue = sqs.create_queue(QueueName="callback-jobs")["QueueUrl"]
    sqs.send_message(QueueUrl=queue, MessageBody="{}")
    seen: Counter[str] = Counter()

    def count(event_name: str, **_: object) -> None:
        seen[event_name.rsplit(".", 1)[1]] += 1
        if seen["DeleteMessage"] == 1 or seen["ReceiveMessage"] > MAX_RECEIVES:
            stop.set()

    sqs.meta.events.register("after-call.sqs", count)

    lambda_runner.serve(queue, f"{handler}:lambda_handler", "callbacks", timeout_s=30, ready_file=None, source="sqs")

    assert calls.read_text().split() == ["1", "2"]  # reported failed, kept, received again, then deleted
    assert queue_depth(sqs, queue).queued == 0
