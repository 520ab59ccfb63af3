"""One local stand-in for a Lambda instance: poll a function's event queue, call its handler.

``python -m iraas.local.lambda_runner --queue-url URL --handler path/handler.py:lambda_handler``

The handler is imported once (its cold start), then each S3 event is passed to it unchanged, one at
a time, as Lambda runs one event per instance; ``iraas up`` starts several runners for concurrency.
Like Lambda's asynchronous invocation, a failing event is retried twice, then dropped with a log
line. moto's ``s3:TestEvent`` (sent when the notification is set up) is acknowledged and skipped.
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import logging
import signal
import sys
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from iraas import aws, logs
from iraas.classroom.settings import load_face_settings

log = logging.getLogger("iraas.lambda_runner")
MAX_ATTEMPTS = 3  # Lambda's asynchronous invocation: the first try and two retries


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


def serve(queue_url: str, handler_spec: str, function_name: str, timeout_s: int, ready_file: Path | None) -> None:
    stopping = False

    def stop(_signum: int, _frame: object) -> None:
        nonlocal stopping
        stopping = True  # finish the current event, then leave

    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, stop)
    settings = load_face_settings()
    sqs = aws.client(settings, "sqs")
    started = time.perf_counter()
    handler = load_handler(handler_spec)
    log.info("%s cold start: %.0f ms", function_name, (time.perf_counter() - started) * 1000)
    if ready_file:
        ready_file.parent.mkdir(parents=True, exist_ok=True)
        ready_file.write_text(str(round((time.perf_counter() - started) * 1000)))
    while not stopping:
        messages = sqs.receive_message(
            QueueUrl=queue_url, MaxNumberOfMessages=1, WaitTimeSeconds=1,
            AttributeNames=["ApproximateReceiveCount"],
        ).get("Messages", [])
        for message in messages:
            attempt = int(message.get("Attributes", {}).get("ApproximateReceiveCount", "1"))
            try:
                handle_message(message["Body"], handler, LocalContext(function_name, timeout_s))
            except Exception:  # noqa: BLE001 - the function failed: retry as Lambda would
                log.exception("%s failed on attempt %d of %d", function_name, attempt, MAX_ATTEMPTS)
                if attempt < MAX_ATTEMPTS:
                    sqs.change_message_visibility(
                        QueueUrl=queue_url, ReceiptHandle=message["ReceiptHandle"], VisibilityTimeout=2
                    )
                    continue
                log.error("%s dropped the event after %d attempts: %s", function_name, attempt, message["Body"][:500])
            sqs.delete_message(QueueUrl=queue_url, ReceiptHandle=message["ReceiptHandle"])


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--queue-url", required=True)
    parser.add_argument("--handler", required=True, help="path/to/module.py:function")
    parser.add_argument("--function-name", default="function")
    parser.add_argument("--timeout", type=int, default=300)
    parser.add_argument("--ready-file", type=Path)
    args = parser.parse_args(argv)
    logs.configure()
    serve(args.queue_url, args.handler, args.function_name, args.timeout, args.ready_file)
    return 0


if __name__ == "__main__":
    sys.exit(main())
