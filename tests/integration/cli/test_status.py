"""iraas/cli/status.py: `iraas status` against template.yaml provisioned in moto: resources, queue depths, workers."""

from __future__ import annotations

import re
import time

from iraas import aws
from iraas.cli.main import main
from iraas.scaling.status import FleetStatus, Heartbeat, S3StatusStore


def test_status_shows_resources_queue_depths_workers_and_throughput(stack, capsys) -> None:
    sqs, s3 = aws.client(stack, "sqs"), aws.client(stack, "s3")
    for n in range(3):
        sqs.send_message(QueueUrl=stack.request_queue_url, MessageBody=f"request {n}")
    sqs.receive_message(QueueUrl=stack.request_queue_url, MaxNumberOfMessages=1, VisibilityTimeout=60)
    sqs.send_message(QueueUrl=stack.dead_letter_queue_url, MessageBody="gave up")
    now = time.time()
    published = S3StatusStore(s3, stack.image_output_bucket)
    published.publish(FleetStatus(2, 3, "local", now - 5, max=4, capped_by="cpu"))
    for worker_id, busy in (("local-1", True), ("local-2", False)):
        published.beat(Heartbeat(worker_id, busy, None if busy else now, now))

    assert main(["status"]) == 0
    out, err = capsys.readouterr()
    lines = out.splitlines()
    assert err == ""
    rows = {line[:13].strip(): line[13:] for line in lines if line[:13].strip()}
    assert rows["requests"] == "2 waiting, 1 in flight"
    assert rows["dead letters"] == "1"
    assert rows["workers"].startswith("2 running, 3 desired, at most 4 (one per core); 1 of 2 busy; local fleet")
    assert rows["throughput"].startswith("0 answered in the last minute")
    assert re.fullmatch(rf"ImageInputBucket +{stack.image_input_bucket}", rows["resources"])  # padded to the longest id
    assert any(line.split()[-2:] == ["CallbackQueue", stack.callback_queue_url] for line in lines)
    assert any(stack.request_queue_url in line for line in lines)
    assert any(line.strip().startswith("StudentsTable") for line in lines)


def test_status_before_any_scaler_ran_says_no_workers_are_reported(stack, capsys) -> None:
    assert main(["status"]) == 0
    out, _ = capsys.readouterr()
    assert "requests     0 waiting, 0 in flight" in out
    assert "workers      none reported yet" in out
