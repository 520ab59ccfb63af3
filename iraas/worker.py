"""The app-tier loop: receive a batch, fetch, classify, store, respond, delete.

One process per instance (EC2 or a local process of the embedded stack) runs ``Worker.run``.
Each batch is classified with one model call; one bad image never fails the others. A request
is deleted only after its result is stored and announced; a request that keeps failing is left
to the queue's redrive policy, which moves it to the dead-letter queue, and its reason is
recorded as its result on the last attempt.

SQS delivers at least once, so two workers can hold the same request: after a crash, or when a
batch outlives its visibility timeout. Two things keep every request answered once:
- while a batch is worked on, its messages' visibility is extended (``_Lease``), so SQS does not
  hand them to another worker while this one is alive;
- the result object is written with ``If-None-Match: *``. The first write wins and only its
  writer announces the result; a later delivery finds the answer stored and retires its message.
A worker that dies between storing and announcing leaves the stored result as the answer (the
web tier and ``GET /v1/images/{id}`` read S3); its announcement on the response queue is lost, never
doubled.
"""

from __future__ import annotations

import json
import logging
import os
import socket
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any, Iterator, Protocol, Sequence

from botocore.exceptions import ClientError

from iraas import aws
from iraas.config import Settings
from iraas.scaling.heartbeat import HeartbeatPublisher
from iraas.jobs import (
    ImageRequest,
    ImageResult,
    MalformedRequest,
    poison_key,
    result_by_name_key,
    result_key,
)

log = logging.getLogger("iraas.worker")

DEFAULT_MAX_RECEIVES = 3  # used only if the queue has no redrive policy
HEARTBEAT_INTERVAL_S = 2.0
SQS_BATCH_LIMIT = 10
POLL_ERROR_BACKOFF_S = 2.0


class BatchClassifier(Protocol):
    def classify_bytes(self, blobs: Sequence[bytes]) -> list[Any]:
        """One Classification or ImageError per blob, in order."""


class ProcessingError(Exception):
    """A request that cannot be answered (this time); ``code`` goes into the recorded result."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code = code
        self.message = message


@dataclass
class BatchOutcome:
    received: int = 0
    answered: int = 0
    duplicates: int = 0
    failed: int = 0
    dead_lettered: int = 0  # failures on their last attempt, recorded as failed results


@dataclass
class _Item:
    message: dict[str, Any]
    request: ImageRequest | None = None
    data: bytes | None = None
    error: ProcessingError | None = None

    @property
    def receive_count(self) -> int:
        return int(self.message.get("Attributes", {}).get("ApproximateReceiveCount", 1))


def _entry_batches(receipts: list[str], **fields: Any) -> Iterator[list[dict[str, Any]]]:
    """SQS batch-call entries for ``receipts``, at most ``SQS_BATCH_LIMIT`` per call."""
    for start in range(0, len(receipts), SQS_BATCH_LIMIT):
        chunk = receipts[start : start + SQS_BATCH_LIMIT]
        yield [{"Id": str(i), "ReceiptHandle": receipt, **fields} for i, receipt in enumerate(chunk)]


class _Lease:
    """Keeps a batch's messages hidden from other workers for as long as this one works on them.

    Every third of the visibility timeout it pushes the timeout out again, so a slow batch (a
    loaded machine, a cold model) is never handed to a second worker while this one is alive.
    """

    def __init__(self, sqs: Any, queue_url: str, messages: list[dict[str, Any]], timeout_s: int) -> None:
        self.sqs = sqs
        self.queue_url = queue_url
        self.receipts = [m["ReceiptHandle"] for m in messages]
        self.timeout_s = timeout_s
        self._done = threading.Event()
        self._thread = threading.Thread(target=self._keep, name="lease", daemon=True)

    def __enter__(self) -> "_Lease":
        self._thread.start()
        return self

    def __exit__(self, *_exc: object) -> None:
        self._done.set()
        self._thread.join()

    def _keep(self) -> None:
        while not self._done.wait(self.timeout_s / 3):
            for entries in _entry_batches(self.receipts, VisibilityTimeout=self.timeout_s):
                try:
                    self.sqs.change_message_visibility_batch(QueueUrl=self.queue_url, Entries=entries)
                except Exception as exc:  # noqa: BLE001 - the conditional result write still guards
                    log.warning("could not extend the visibility of a batch: %s", exc)


class Worker:
    def __init__(
        self,
        settings: Settings,
        classifier: BatchClassifier,
        s3: Any = None,
        sqs: Any = None,
        worker_id: str | None = None,
    ) -> None:
        self.settings = settings
        self.classifier = classifier
        self.s3 = s3 or aws.client(settings, "s3")
        self.sqs = sqs or aws.client(settings, "sqs")
        self.worker_id = worker_id or f"{socket.gethostname()}:{os.getpid()}"
        self.max_receives = self._max_receives()
        self.busy = threading.Event()  # set while a batch is being worked on
        self.idle_since = time.time()  # wall clock, reported in heartbeats to the scaler
        self._fetch_pool = ThreadPoolExecutor(max_workers=8, thread_name_prefix="fetch")

    def _max_receives(self) -> int:
        """Read from the queue's own redrive policy, so it cannot drift from template.yaml."""
        attrs = self.sqs.get_queue_attributes(
            QueueUrl=self.settings.request_queue_url, AttributeNames=["RedrivePolicy"]
        ).get("Attributes", {})
        if "RedrivePolicy" not in attrs:
            return DEFAULT_MAX_RECEIVES
        return int(json.loads(attrs["RedrivePolicy"])["maxReceiveCount"])

    # ---- the loop ------------------------------------------------------------------------

    def run(self, stop: threading.Event, max_idle_s: float | None = None) -> None:
        """Work until ``stop`` is set (between batches), or after ``max_idle_s`` with no work."""
        log.info("worker %s polling %s", self.worker_id, self.settings.request_queue_url)
        idle_since = time.monotonic()
        while not stop.is_set():
            try:
                outcome = self.poll_once()
            except Exception as exc:  # noqa: BLE001 - SQS unreachable after boto3's retries: keep going
                log.warning("could not poll %s: %s; trying again", self.settings.request_queue_url, exc)
                stop.wait(POLL_ERROR_BACKOFF_S)
                outcome = BatchOutcome()
            if outcome.received:
                idle_since = time.monotonic()
            elif max_idle_s is not None and time.monotonic() - idle_since >= max_idle_s:
                log.info("worker %s idle for %.0f s, stopping", self.worker_id, max_idle_s)
                return

    def poll_once(self, wait_s: int | None = None) -> BatchOutcome:
        messages = self.sqs.receive_message(
            QueueUrl=self.settings.request_queue_url,
            MaxNumberOfMessages=self.settings.worker.batch_size,
            WaitTimeSeconds=self.settings.worker.long_poll_s if wait_s is None else wait_s,
            VisibilityTimeout=self.settings.worker.visibility_timeout_s,
            MessageSystemAttributeNames=["ApproximateReceiveCount"],
        ).get("Messages", [])
        if not messages:
            return BatchOutcome()
        self.busy.set()
        try:
            return self.handle_batch(messages)
        finally:
            self.idle_since = time.time()
            self.busy.clear()

    def state(self) -> tuple[bool, float]:
        """(busy, idle since), for the heartbeat."""
        return self.busy.is_set(), self.idle_since

    # ---- one batch -----------------------------------------------------------------------

    def handle_batch(self, messages: list[dict[str, Any]]) -> BatchOutcome:
        started = time.perf_counter()
        outcome = BatchOutcome(received=len(messages))
        items = [self._parse(m) for m in messages]
        with _Lease(self.sqs, self.settings.request_queue_url, messages, self.settings.worker.visibility_timeout_s):
            done = self._answer_batch(items, outcome)
        for item in items:
            if item.error is not None:
                outcome.failed += 1
                outcome.dead_lettered += self._fail(item)
        self._delete(done)
        log.info(
            "batch of %d: %d answered, %d repeated, %d failed (%d recorded as final) in %.0f ms",
            outcome.received,
            outcome.answered,
            outcome.duplicates,
            outcome.failed,
            outcome.dead_lettered,
            (time.perf_counter() - started) * 1000,
        )
        return outcome

    def _answer_batch(self, items: list[_Item], outcome: BatchOutcome) -> list[_Item]:
        """Classify and answer the parsed items; returns those to delete (answered or repeated)."""
        done: list[_Item] = []
        todo: list[_Item] = []
        for item in items:
            if item.error is not None:
                continue
            try:
                answered_before = self._already_answered(item.request)
                if answered_before:
                    self._restore_by_name(item.request)
            except Exception as exc:  # noqa: BLE001 - transient S3 trouble; retried by the queue
                item.error = ProcessingError("lookup_failed", str(exc))
                continue
            if answered_before:
                done.append(item)  # a repeated delivery: the answer stands, just retire it
                outcome.duplicates += 1
            else:
                todo.append(item)
        list(self._fetch_pool.map(self._fetch, todo))
        ready = [item for item in todo if item.error is None]
        results = self.classifier.classify_bytes([item.data for item in ready]) if ready else []
        answers: list[tuple[_Item, ImageResult]] = []
        for item, result in zip(ready, results):
            if isinstance(result, Exception):
                code = getattr(result, "code", "classification_failed")
                item.error = ProcessingError(code, getattr(result, "message", str(result)))
            else:
                answers.append((item, ImageResult.done(item.request, result)))
        for item, answer in answers:
            try:
                answered = self._answer(answer)
            except Exception as exc:  # noqa: BLE001 - keep the message; it will be retried
                log.warning("could not store the result of %s: %s", answer.id, exc)
                item.error = ProcessingError("store_failed", str(exc))
                continue
            done.append(item)
            if answered:
                outcome.answered += 1
            else:  # another delivery of the same request got there first
                outcome.duplicates += 1
        return done

    def _parse(self, message: dict[str, Any]) -> _Item:
        item = _Item(message)
        try:
            item.request = ImageRequest.from_message(message.get("Body", ""))
        except MalformedRequest as exc:
            item.error = ProcessingError("malformed_request", str(exc))
        return item

    def _already_answered(self, request: ImageRequest) -> bool:
        bucket = self.settings.image_output_bucket
        try:
            self.s3.head_object(Bucket=bucket, Key=result_key(request.id))
        except ClientError as exc:
            if exc.response.get("Error", {}).get("Code") in ("404", "NoSuchKey", "NotFound"):
                return False
            raise
        return True

    def _restore_by_name(self, request: ImageRequest) -> None:
        """The first delivery may have died between its two writes: make sure the answer can be
        found by name too (a copy of the stored answer, so both keys always agree)."""
        bucket = self.settings.image_output_bucket
        self.s3.copy_object(
            Bucket=bucket,
            Key=result_by_name_key(request.id, request.name),
            CopySource={"Bucket": bucket, "Key": result_key(request.id)},
        )

    def _fetch(self, item: _Item) -> None:
        request = item.request
        limit = self.settings.limits.max_image_bytes
        try:
            obj = self.s3.get_object(Bucket=self.settings.image_input_bucket, Key=request.key)
            if obj["ContentLength"] > limit:
                item.error = ProcessingError("too_large", f"the image is over {limit} bytes")
                return
            item.data = obj["Body"].read()
        except self.s3.exceptions.NoSuchKey:
            item.error = ProcessingError("input_missing", f"no input object at {request.key}")
        except Exception as exc:  # noqa: BLE001 - transient S3 trouble; retried by the queue
            item.error = ProcessingError("fetch_failed", str(exc))

    def _answer(self, result: ImageResult) -> bool:
        """Store the result (by id, then by name) and announce it on the response queue.

        Returns False, storing and announcing nothing, when the request already has an answer.
        """
        body = result.to_json()
        bucket = self.settings.image_output_bucket
        try:
            # If-None-Match makes the first answer final: S3 refuses (412) to overwrite it.
            self.s3.put_object(
                Bucket=bucket, Key=result_key(result.id), Body=body.encode(), ContentType="application/json", IfNoneMatch="*"
            )
        except ClientError as exc:
            if exc.response.get("Error", {}).get("Code") == "PreconditionFailed":
                return False
            raise  # including 409 ConditionalRequestConflict: a concurrent write; retried later
        self.s3.put_object(
            Bucket=bucket, Key=result_by_name_key(result.id, result.name), Body=body.encode(), ContentType="application/json"
        )
        self.sqs.send_message(QueueUrl=self.settings.response_queue_url, MessageBody=body)
        return True

    def _fail(self, item: _Item) -> int:
        """Leave a failed message to the queue; on its last attempt, record why. Returns 1 then."""
        error = item.error
        receipt = item.message["ReceiptHandle"]
        request = item.request
        log.warning(
            "request %s failed (attempt %d of %d): %s: %s",
            request.id if request else item.message.get("MessageId"),
            item.receive_count,
            self.max_receives,
            error.code,
            error.message,
        )
        final = item.receive_count >= self.max_receives
        try:
            if final and request is not None:
                self._answer(ImageResult.failed(request.id, request.name, error.code, error.message))
            elif final:
                self.s3.put_object(
                    Bucket=self.settings.image_output_bucket,
                    Key=poison_key(item.message.get("MessageId", "")),
                    Body=json.dumps(
                        {
                            "message_id": item.message.get("MessageId"),
                            "error": {"code": error.code, "message": error.message},
                            "body": item.message.get("Body", "")[:4096],
                        }
                    ).encode(),
                    ContentType="application/json",
                )
            # Sooner than the visibility timeout: retry soon, or (if final) let SQS move it to the
            # dead-letter queue on its next receive.
            self.sqs.change_message_visibility(
                QueueUrl=self.settings.request_queue_url,
                ReceiptHandle=receipt,
                VisibilityTimeout=0 if final else self.settings.worker.retry_delay_s,
            )
        except Exception as exc:  # noqa: BLE001 - the message simply reappears after its timeout
            log.warning("could not record the failure: %s", exc)
        return int(final)

    def _delete(self, items: list[_Item]) -> None:
        receipts = [item.message["ReceiptHandle"] for item in items]
        for entries in _entry_batches(receipts):
            response = self.sqs.delete_message_batch(QueueUrl=self.settings.request_queue_url, Entries=entries)
            for failure in response.get("Failed", []):
                # The answer is stored; a redelivery will be recognised and retired.
                log.warning("could not delete a message: %s", failure)


def serve(settings: Settings, ready_file: str | None = None, max_idle_s: float | None = None) -> None:
    """The worker process: load and warm the model, then work until SIGTERM/SIGINT.

    A signal that arrives while a batch is being worked on lets the batch finish first; one that
    arrives while waiting for messages stops at once (anything that receive call took becomes
    visible again after the visibility timeout, so nothing is lost).
    """
    import signal

    from iraas.classify.runtime import load_classifier

    classifier = load_classifier(
        settings.model_dir, threads=settings.worker.threads, max_pixels=settings.limits.max_image_pixels
    )
    worker = Worker(settings, classifier, worker_id=os.environ.get("IRAAS_WORKER_ID") or None)
    heartbeat = HeartbeatPublisher(
        worker.s3, settings.image_output_bucket, worker.worker_id, worker.state, HEARTBEAT_INTERVAL_S
    )
    stop = threading.Event()

    def on_signal(signum: int, _frame: Any) -> None:
        stop.set()
        if not worker.busy.is_set():
            raise SystemExit(0)
        log.info("signal %d: finishing the current batch before stopping", signum)

    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGINT, on_signal)
    if ready_file:
        with open(ready_file, "w") as f:
            f.write(worker.worker_id)
    heartbeat.start()
    log.info("worker %s ready", worker.worker_id)
    try:
        worker.run(stop, max_idle_s=max_idle_s)
    except SystemExit:
        pass
    finally:
        heartbeat.stop()
    log.info("worker %s stopped", worker.worker_id)
