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
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any, Protocol

from iraas import aws
from iraas.config import Settings
from iraas.images.jobs import ImageRequest, ImageResult, MalformedRequest
from iraas.images.results import ResultStore
from iraas.queues import entry_batches
from iraas.scaling.heartbeat import HeartbeatPublisher

log = logging.getLogger(__name__)

DEFAULT_MAX_RECEIVES = 3  # used only if the queue has no redrive policy
HEARTBEAT_INTERVAL_S = 2.0
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

    @property
    def label(self) -> str:
        """The request id, or the message id of a message that is no request."""
        return self.request.id if self.request else str(self.message.get("MessageId", "?"))

    def fields(self) -> dict[str, Any]:
        """Log fields that trace one delivery of one request."""
        return {"request_id": self.label, "receive_count": self.receive_count}


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

    def __enter__(self) -> _Lease:
        self._thread.start()
        return self

    def __exit__(self, *_exc: object) -> None:
        self._done.set()
        self._thread.join()

    def _keep(self) -> None:
        while not self._done.wait(self.timeout_s / 3):
            for entries in entry_batches(self.receipts, VisibilityTimeout=self.timeout_s):
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
        self.results = ResultStore(self.s3, settings.image_output_bucket)
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
        log.info("batch received", extra={"batch_size": len(items), "requests": [i.label for i in items]})
        with _Lease(self.sqs, self.settings.request_queue_url, messages, self.settings.worker.visibility_timeout_s):
            done = self._answer_batch(items, outcome)
        for item in items:
            if item.error is not None:
                outcome.failed += 1
                outcome.dead_lettered += self._fail(item)
        self._delete(done)
        log.info(
            "batch done",
            extra={
                "batch_size": outcome.received,
                "answered": outcome.answered,
                "repeated": outcome.duplicates,
                "failed": outcome.failed,
                "final_failures": outcome.dead_lettered,
                "batch_ms": _ms_since(started),
            },
        )
        return outcome

    def _answer_batch(self, items: list[_Item], outcome: BatchOutcome) -> list[_Item]:
        """Classify and answer the parsed items; returns those to delete (answered or repeated)."""
        done: list[_Item] = []
        todo: list[tuple[_Item, ImageRequest]] = []
        for item in items:
            if item.error is not None or item.request is None:
                continue
            try:
                answered_before = self.results.exists(item.request.id)
                if answered_before:
                    # The first delivery may have died between its two writes.
                    self.results.copy_by_name(item.request.id, item.request.name)
            except Exception as exc:  # noqa: BLE001 - transient S3 trouble; retried by the queue
                item.error = ProcessingError("lookup_failed", str(exc))
                continue
            if answered_before:
                done.append(item)  # a repeated delivery: the answer stands, just retire it
                outcome.duplicates += 1
                log.info("repeated delivery retired", extra=item.fields())
            else:
                todo.append((item, item.request))
        started = time.perf_counter()
        list(self._fetch_pool.map(lambda pair: self._fetch(*pair), todo))
        fetch_ms = _ms_since(started)
        ready = [(item, request) for item, request in todo if item.data is not None and item.error is None]
        started = time.perf_counter()
        results = self.classifier.classify_bytes([item.data for item, _ in ready if item.data]) if ready else []
        classify_ms = _ms_since(started)
        for (item, request), result in zip(ready, results, strict=True):
            if isinstance(result, Exception):
                code = getattr(result, "code", "classification_failed")
                item.error = ProcessingError(code, getattr(result, "message", str(result)))
                continue
            answer = ImageResult.done(request, result)
            started = time.perf_counter()
            try:
                answered = self._answer(answer)
            except Exception as exc:  # noqa: BLE001 - keep the message; it will be retried
                log.warning("could not store the result", extra={**item.fields(), "error": str(exc)})
                item.error = ProcessingError("store_failed", str(exc))
                continue
            done.append(item)
            if answered:
                outcome.answered += 1
            else:  # another delivery of the same request got there first
                outcome.duplicates += 1
            log.info(
                "answered" if answered else "answered before by another delivery",
                extra={**item.fields(), "label": answer.label, "batch_size": len(ready), "fetch_ms": fetch_ms,
                       "classify_ms": classify_ms, "store_ms": _ms_since(started)},
            )
        return done

    def _parse(self, message: dict[str, Any]) -> _Item:
        item = _Item(message)
        try:
            item.request = ImageRequest.from_message(message.get("Body", ""))
        except MalformedRequest as exc:
            item.error = ProcessingError("malformed_request", str(exc))
        return item

    def _fetch(self, item: _Item, request: ImageRequest) -> None:
        limit = self.settings.limits.max_image_bytes
        try:
            obj = self.s3.get_object(Bucket=self.settings.image_input_bucket, Key=request.key)
            if obj["ContentLength"] > limit:
                item.error = ProcessingError("too_large", f"the image is over {limit} bytes")
                return
            item.data = obj["Body"].read()
        except Exception as exc:  # noqa: BLE001 - transient S3 trouble is retried by the queue
            if aws.is_not_found(exc):
                item.error = ProcessingError("input_missing", f"no input object at {request.key}")
            else:
                item.error = ProcessingError("fetch_failed", str(exc))

    def _answer(self, result: ImageResult) -> bool:
        """Store the result (by id, then by name) and announce it on the response queue.

        Returns False, storing and announcing nothing, when the request already has an answer.
        """
        body = result.to_json()
        if not self.results.put_first(result, body):
            return False
        self.results.put_by_name(result, body)
        self.sqs.send_message(QueueUrl=self.settings.response_queue_url, MessageBody=body)
        return True

    def _fail(self, item: _Item) -> int:
        """Leave a failed message to the queue; on its last attempt, record why. Returns 1 then."""
        error = item.error or ProcessingError("unknown", "failed without a reason")
        request = item.request
        final = item.receive_count >= self.max_receives
        log.warning(
            "request failed",
            extra={**item.fields(), "max_receives": self.max_receives, "final": final,
                   "code": error.code, "error": error.message},
        )
        try:
            if final and request is not None:
                self._answer(ImageResult.failed(request.id, request.name, error.code, error.message))
            elif final:
                self.results.record_unreadable(
                    item.message.get("MessageId", ""), error.code, error.message, item.message.get("Body", "")
                )
            # Sooner than the visibility timeout: retry soon, or (if final) let SQS move it to the
            # dead-letter queue on its next receive.
            self.sqs.change_message_visibility(
                QueueUrl=self.settings.request_queue_url,
                ReceiptHandle=item.message["ReceiptHandle"],
                VisibilityTimeout=0 if final else self.settings.worker.retry_delay_s,
            )
        except Exception as exc:  # noqa: BLE001 - the message simply reappears after its timeout
            log.warning("could not record the failure", extra={**item.fields(), "error": str(exc)})
        return int(final)

    def _delete(self, items: list[_Item]) -> None:
        receipts = [item.message["ReceiptHandle"] for item in items]
        for entries in entry_batches(receipts):
            response = self.sqs.delete_message_batch(QueueUrl=self.settings.request_queue_url, Entries=entries)
            for failure in response.get("Failed", []):
                # The answer is stored; a redelivery will be recognised and retired.
                log.warning("could not delete a message", extra={"failure": failure})


def _ms_since(started: float) -> float:
    return round((time.perf_counter() - started) * 1000, 1)


def serve(settings: Settings, ready_file: str | None = None, max_idle_s: float | None = None) -> None:
    """The worker process: load and warm the model, then work until SIGTERM/SIGINT.

    A signal that arrives while a batch is being worked on lets the batch finish first; one that
    arrives while waiting for messages stops at once (anything that receive call took becomes
    visible again after the visibility timeout, so nothing is lost).
    """
    import signal

    from iraas.images.classify.runtime import load_classifier

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
