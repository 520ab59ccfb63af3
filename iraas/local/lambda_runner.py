"""One local stand-in for a Lambda instance: poll a function's event queue, call its handler.

``python -m iraas.local.lambda_runner --queue-url URL --handler path/handler.py:lambda_handler``

The handler is imported once (its cold start), then each S3 event is passed to it unchanged, one at
a time, as Lambda runs one event per instance; ``iraas up`` runs as many runners as the event queue's
backlog asks for, up to a cap (:mod:`iraas.local.functions`). Like Lambda's asynchronous invocation,
a failing event is retried twice, then dropped with a log line. moto's ``s3:TestEvent`` (sent when
the notification is set up) is acknowledged and skipped.

With ``--source sqs`` the runner stands in for Lambda's SQS trigger instead (batches of one): each
message of the function's queue becomes an SQS event of one record, with its receive count; a failure
leaves the message to the queue (retried two seconds later, moved to the dead-letter queue by the
queue's own redrive policy). While the handler works, the message is kept hidden ``HOLD_S`` at a
time and extended, so that a runner killed mid-segment gives its segment back within seconds, not
after the queue's visibility timeout.

Under ``iraas up`` the runners are forked from a zygote (:mod:`iraas.local.zygote`) whose entry is
:func:`preforked`: the handler (its settings, the face models and their warm-up) and the AWS
clients are loaded once there, so a new runner is ready in milliseconds, not a second. The handler
still reads the students table for every video, so enrolments count at once in every runner.
"""

from __future__ import annotations

import argparse
import contextlib
import importlib.util
import json
import logging
import signal
import sys
import threading
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from iraas import aws, logs
from iraas.aws import Backoff
from iraas.classroom.settings import FaceSettings, load_face_settings
from iraas.proctitle import function_title, set_title, stack_of, zygote_forks, zygote_title

log = logging.getLogger("iraas.lambda_runner")
MAX_ATTEMPTS = 3  # Lambda's asynchronous invocation: the first try and two retries
RECEIVE_VISIBILITY_S = 5  # how long a received event stays hidden before its runner claims it
HOLD_S = 15  # an SQS event's message, while its handler works: hidden this long, extended every third of it
RETRY_DELAY_S = 2  # a failed event is visible again after this long


@dataclass
class LocalContext:
    """The attributes of Lambda's context object that handlers (and Powertools) read."""

    function_name: str
    timeout_s: int
    memory_limit_in_mb: int = 3008
    function_version: str = "$LATEST"
    aws_request_id: str = field(default_factory=lambda: str(uuid.uuid4()))
    log_group_name: str = "local"
    log_stream_name: str = "local"
    _deadline: float = field(default_factory=time.monotonic)

    def __post_init__(self) -> None:
        self._deadline = time.monotonic() + self.timeout_s

    @property
    def invoked_function_arn(self) -> str:
        return f"arn:aws:lambda:us-east-1:123456789012:function:{self.function_name}"

    def get_remaining_time_in_millis(self) -> int:
        return max(0, int((self._deadline - time.monotonic()) * 1000))


def load_handler(spec: str) -> Callable[[dict, Any], Any]:
    """Import ``path/to/module.py:function`` the way Lambda imports its handler (once)."""
    path, _, name = spec.rpartition(":")
    module_spec = importlib.util.spec_from_file_location(f"lambda_{Path(path).stem}", path)
    if module_spec is None or module_spec.loader is None:
        raise SystemExit(f"cannot load handler file {path}")
    module = importlib.util.module_from_spec(module_spec)
    module_spec.loader.exec_module(module)
    return getattr(module, name)


def handle_message(body: str, handler: Callable[[dict, Any], Any], context: LocalContext) -> bool:
    """Invoke the handler for one queue message; False for a message that is not an S3 event."""
    event = json.loads(body)
    if not isinstance(event, dict) or "Records" not in event:
        log.info("skipped a message that is not an S3 event: %s", body[:200])  # s3:TestEvent
        return False
    handler(event, context)
    return True


def serve(
    queue_url: str, handler_spec: str, function_name: str, timeout_s: int, ready_file: Path | None, source: str = "s3",
) -> None:
    """A runner from a fresh interpreter: load the handler (the cold start), then poll."""
    stopping = _stop_on_signals()
    started = time.perf_counter()
    sqs, handler = _load(handler_spec)
    cold_ms = (time.perf_counter() - started) * 1000
    log.info("%s cold start: %.0f ms", function_name, cold_ms)
    _poll(sqs, queue_url, handler, function_name, timeout_s, ready_file, cold_ms, stopping, source)


def preforked(options: dict[str, Any]) -> Callable[[dict[str, Any]], int]:
    """The zygote's entry for a function's runners (``iraas.local.lambda_runner:preforked``).

    In the zygote: load the handler once, as a cold start does (imports, settings, models and
    their warm-up), and create the AWS clients it and the runner use, without calling them (so no
    connection, and no thread of ours, is inherited by a fork). ``options``: ``queue_url``,
    ``handler``, ``function_name``, ``timeout_s``. Returns what each forked runner runs."""
    started = time.perf_counter()
    function_name, source = str(options.get("function_name", "function")), str(options.get("source", "s3"))
    set_title(zygote_title(zygote_forks(function_name, source)), stack_of())
    settings = load_face_settings()
    sqs, handler = _load(str(options["handler"]), settings)
    for service in ("s3", "dynamodb"):  # the pipeline's; botocore parses their models once, here
        aws.client(settings, service)
    log.info("%s preloaded in %.0f ms; forking runners", function_name, (time.perf_counter() - started) * 1000)

    def run(request: dict[str, Any]) -> int:
        forked = time.perf_counter()
        set_title(function_title(function_name, source), stack_of())
        stopping = _stop_on_signals()
        ready_ms = (time.perf_counter() - forked) * 1000
        log.info("%s forked (warm from the zygote), ready in %.1f ms", request["id"], ready_ms)
        _poll(
            sqs, str(options["queue_url"]), handler, function_name, int(options.get("timeout_s", 300)),
            Path(request["ready_file"]), ready_ms, stopping, source,
        )
        return 0

    return run


def _stop_on_signals() -> Callable[[], bool]:
    """SIGTERM or SIGINT: finish the current event, then leave. Returns whether one came."""
    stopped: list[int] = []

    def stop(signum: int, _frame: object) -> None:
        stopped.append(signum)

    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, stop)
    return lambda: bool(stopped)


def _load(handler_spec: str, settings: FaceSettings | None = None) -> tuple[Any, Callable[[dict, Any], Any]]:
    """The runner's SQS client and the handler, imported once (the cold start)."""
    return aws.client(settings or load_face_settings(), "sqs"), load_handler(handler_spec)


def _poll(
    sqs: Any,
    queue_url: str,
    handler: Callable[[dict, Any], Any],
    function_name: str,
    timeout_s: int,
    ready_file: Path | None,
    ready_ms: float,
    stopping: Callable[[], bool],
    source: str = "s3",
) -> None:
    """Take the queue's events one at a time until told to stop."""
    if ready_file:
        ready_file.parent.mkdir(parents=True, exist_ok=True)
        ready_file.write_text(str(round(ready_ms)))
    arn = sqs.get_queue_attributes(QueueUrl=queue_url, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"] \
        if source == "sqs" else ""
    backoff = Backoff()
    while not stopping():
        # Received hidden for a few seconds only: a runner killed while its receive is pending
        # (a crash, a scale-in) gives the event back at once instead of after the function timeout.
        try:
            messages = sqs.receive_message(
                QueueUrl=queue_url, MaxNumberOfMessages=1, WaitTimeSeconds=1,
                VisibilityTimeout=RECEIVE_VISIBILITY_S, AttributeNames=["ApproximateReceiveCount", "SentTimestamp"],
            ).get("Messages", [])
        except Exception as exc:  # noqa: BLE001 - the endpoint is away (restarting): wait, then resume
            log.warning("%s could not receive events: %s; trying again in %.1f s", function_name, exc, backoff.next_s)
            backoff.sleep(stopping)
            continue
        backoff.reset()
        for message in messages:
            if source == "sqs":
                _invoke_sqs(sqs, queue_url, arn, message, handler, function_name, timeout_s)
            else:
                _invoke_s3(sqs, queue_url, message, handler, function_name, timeout_s)


def _invoke_s3(
    sqs: Any, queue_url: str, message: dict[str, Any], handler: Callable[[dict, Any], Any], function_name: str,
    timeout_s: int,
) -> None:
    """One S3 event, as Lambda's asynchronous invocation runs it: two retries, then dropped."""
    attempt = int(message.get("Attributes", {}).get("ApproximateReceiveCount", "1"))
    try:
        # Now it is ours: hidden for as long as the function may run, as Lambda holds it.
        sqs.change_message_visibility(
            QueueUrl=queue_url, ReceiptHandle=message["ReceiptHandle"], VisibilityTimeout=timeout_s
        )
        handle_message(message["Body"], handler, LocalContext(function_name, timeout_s))
    except Exception:  # noqa: BLE001 - the function failed: retry as Lambda would
        log.exception("%s failed on attempt %d of %d", function_name, attempt, MAX_ATTEMPTS)
        if attempt < MAX_ATTEMPTS:
            with contextlib.suppress(Exception):  # else it comes back after the function timeout
                sqs.change_message_visibility(
                    QueueUrl=queue_url, ReceiptHandle=message["ReceiptHandle"], VisibilityTimeout=RETRY_DELAY_S
                )
            return
        log.error("%s dropped the event after %d attempts: %s", function_name, attempt, message["Body"][:500])
    _delete(sqs, queue_url, message, function_name)


def sqs_event(message: dict[str, Any], arn: str) -> dict[str, Any]:
    """The event Lambda's SQS trigger makes of one message (a batch of one)."""
    region = arn.split(":")[3] if arn.count(":") >= 5 else "us-east-1"
    return {"Records": [{
        "messageId": message["MessageId"], "receiptHandle": message["ReceiptHandle"], "body": message["Body"],
        "attributes": dict(message.get("Attributes", {})), "messageAttributes": {},
        "md5OfBody": message.get("MD5OfBody", ""), "eventSource": "aws:sqs", "eventSourceARN": arn, "awsRegion": region,
    }]}


def _invoke_sqs(
    sqs: Any, queue_url: str, arn: str, message: dict[str, Any], handler: Callable[[dict, Any], Any],
    function_name: str, timeout_s: int,
) -> None:
    """One message of the function's own queue, as Lambda's SQS trigger runs it: deleted when the
    handler returns, left to the queue (and its redrive policy) when it fails or reports the message
    in its ``batchItemFailures`` (the event source's ReportBatchItemFailures)."""
    receipt = message["ReceiptHandle"]
    held = threading.Event()

    def hold() -> None:  # keep it hidden while the handler works, HOLD_S at a time
        while True:
            with contextlib.suppress(Exception):
                sqs.change_message_visibility(QueueUrl=queue_url, ReceiptHandle=receipt, VisibilityTimeout=HOLD_S)
            if held.wait(HOLD_S / 3):
                return

    holder = threading.Thread(target=hold, name="hold", daemon=True)
    holder.start()
    attempt = message.get("Attributes", {}).get("ApproximateReceiveCount", "1")
    try:
        response = handler(sqs_event(message, arn), LocalContext(function_name, timeout_s))
        failed = isinstance(response, dict) and bool(response.get("batchItemFailures"))
        if failed:
            log.warning("%s reported receive %s of a message failed; the queue retries it", function_name, attempt)
    except Exception:  # noqa: BLE001 - the function failed: the queue retries it
        log.exception("%s failed on receive %s of a message; the queue retries it", function_name, attempt)
        failed = True
    held.set()
    holder.join()
    if failed:
        with contextlib.suppress(Exception):
            sqs.change_message_visibility(QueueUrl=queue_url, ReceiptHandle=receipt, VisibilityTimeout=RETRY_DELAY_S)
        return
    _delete(sqs, queue_url, message, function_name)


def _delete(sqs: Any, queue_url: str, message: dict[str, Any], function_name: str) -> None:
    try:
        sqs.delete_message(QueueUrl=queue_url, ReceiptHandle=message["ReceiptHandle"])
    except Exception as exc:  # noqa: BLE001 - it comes back; the function's output is idempotent
        log.warning("%s could not delete a handled event (it will be handled again): %s", function_name, exc)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--queue-url", required=True)
    parser.add_argument("--handler", required=True, help="path/to/module.py:function")
    parser.add_argument("--function-name", default="function")
    parser.add_argument("--timeout", type=int, default=300)
    parser.add_argument("--ready-file", type=Path)
    parser.add_argument("--source", choices=["s3", "sqs"], default="s3", help="what the queue's messages are")
    args = parser.parse_args(argv)
    logs.configure()
    set_title(function_title(args.function_name, args.source), stack_of())
    serve(args.queue_url, args.handler, args.function_name, args.timeout, args.ready_file, args.source)
    return 0


if __name__ == "__main__":
    sys.exit(main())
