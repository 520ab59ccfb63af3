"""The app-tier loop: receive a batch, take its images, classify, store, reply, delete.

One process per instance (EC2 or a local process of the embedded stack) runs ``Worker.run``.
Each batch is classified with one model call; one bad image never fails the others. A small
image rides in its request message (``ImageRequest.image_b64``), so only the others are fetched
from S3. A request is deleted only after its result is stored and sent to the reply queue its
request names (and, with ``IRAAS_WORKER_ANNOUNCE``, announced on the response queue, which
``iraas up`` prints and nothing reads on AWS). A request whose image can never be classified
(not an image, undecodable, too large: ``ProcessingError.permanent``) is answered failed at once and
deleted; one that keeps failing for a reason that may pass is left to the queue's redrive policy,
which moves it to the dead-letter queue, and its reason is recorded as its result on the last attempt.

While one batch is classified, stored and answered, a thread of the same process receives the
next and takes its images (``Worker.run``: one batch ahead, never more), so the model does not wait
for S3 and SQS. A batch received ahead counts as work in hand (``busy``, so the scaler never stops
the worker with it), is leased from its receipt, and is finished before the worker stops. No
thread polls in a loop: each waits on SQS's long poll, an event or a queue.

SQS delivers at least once, so two workers can hold the same request: after a crash, or when a
batch outlives its visibility timeout. Two things keep every request answered once:
- while a batch is worked on, its messages' visibility is extended (``_Lease``), so SQS does not
  hand them to another worker while this one is alive;
- the result object is written with ``If-None-Match: *``. The first write wins and only its
  writer replies (and announces); a later delivery finds the answer stored and retires its message.
A worker that dies between storing and replying leaves the stored result as the answer (the
web tier and ``GET /v1/images/{id}`` read S3); its reply (and announcement) is lost, never doubled.

AWS trouble (S3 throttling with SlowDown, a 503) is retried by boto3 first (``iraas/aws/__init__.py``: a few
attempts, jittered backoff, a retry quota per client). A batch that still failed more for AWS's
reasons than it answered makes the worker pause before its next receive, longer each time (up to
``AWS_TROUBLE_PAUSE_CAP_S``): once a client's retry quota is spent its calls fail at once, and a
worker that went on would run through the whole backlog, using up each request's receives and
dead-lettering requests that nothing is wrong with. A batch whose fetches AWS failed is not
followed by one received ahead, so the pause comes before the next receive.
"""

from __future__ import annotations

import json
import logging
import os
import socket
import threading
import time
from collections import deque
from collections.abc import Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any, Protocol

from iraas import aws
from iraas.aws import Backoff
from iraas.callbacks.jobs import CallbackJob
from iraas.images.jobs import ImageRequest, ImageResult, MalformedRequest, base64_length
from iraas.images.metrics import LatencyWindow, MetricsPublisher
from iraas.images.replies import is_reply_queue
from iraas.images.results import ResultStore, S3ResultStore
from iraas.images.settings import ImageSettings
from iraas.proctitle import set_title, stack_of, worker_title
from iraas.queues import entry_batches, send_batches, send_each
from iraas.scaling.heartbeat import HeartbeatPublisher
from iraas.scaling.status import S3StatusStore

log = logging.getLogger(__name__)

DEFAULT_MAX_RECEIVES = 3  # used only if the queue has no redrive policy
HEARTBEAT_INTERVAL_S = 2.0
POLL_ERROR_BACKOFF_S = 2.0
# After a batch that AWS failed (see the module's docstring): a jittered pause of up to
# BASE * 2^(such batches in a row - 1), at most CAP (iraas.aws.Backoff).
AWS_TROUBLE_PAUSE_BASE_S = 0.5
AWS_TROUBLE_PAUSE_CAP_S = 30.0
# Failures a later try may not repeat; every other failure of a request is its answer at once.
TRANSIENT_CODES = frozenset({"classification_failed", "unknown"})
# How long received messages stay hidden before the lease extends them (see _Lease).
RECEIVE_VISIBILITY_S = 2
# Receipts of answered messages whose delete failed, kept to try again with the next delete and
# before the worker stops. Bounded: past it, the oldest are left to come back and be retired as
# repeats (their answers are stored), which costs a receive, never a second answer.
UNDELETED_CAP = 1000
FINAL_DELETE_TRIES = 3


class BatchClassifier(Protocol):
    def classify_bytes(self, blobs: Sequence[bytes], top: int) -> list[Any]:
        """One Classification (ranking at least ``top`` predictions, and its top5) or ImageError
        per blob, in order."""


class ProcessingError(Exception):
    """A request that cannot be answered (this time); ``code`` goes into the recorded result."""

    def __init__(self, code: str, message: str, aws_trouble: bool = False) -> None:
        super().__init__(message)
        self.code = code
        self.message = message
        self.aws_trouble = aws_trouble  # AWS failed (throttled, unavailable), not the request

    @property
    def permanent(self) -> bool:
        """Whether trying again cannot help: the request or its image is what is wrong (not an
        image, undecodable, too many pixels, too large, garbled, its input gone), not AWS or the model."""
        return not self.aws_trouble and self.code not in TRANSIENT_CODES


@dataclass
class BatchOutcome:
    received: int = 0
    answered: int = 0
    duplicates: int = 0
    failed: int = 0
    dead_lettered: int = 0  # failures on their last attempt, recorded as failed results
    aws_failures: int = 0  # of the failures, those AWS caused (fetch or store failed)


@dataclass
class _Batch:
    """A received batch on its way through the worker: parsed, leased, its images taken."""

    items: list[_Item]
    lease: _Lease
    started: float  # perf_counter at its receipt
    fetch_ms: float = 0.0

    @property
    def fetch_trouble(self) -> bool:
        """Whether AWS failed a fetch of this batch (the worker then pauses before its next receive)."""
        return any(item.error is not None and item.error.aws_trouble for item in self.items)


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
    def sent_at(self) -> float | None:
        """When the web tier sent the request (SQS's SentTimestamp, wall clock), if SQS said."""
        sent_ms = self.message.get("Attributes", {}).get("SentTimestamp")
        return int(sent_ms) / 1000 if sent_ms else None

    @property
    def label(self) -> str:
        """The request id, or the message id of a message that is no request."""
        return self.request.id if self.request else str(self.message.get("MessageId", "?"))

    def fields(self) -> dict[str, Any]:
        """Log fields that trace one delivery of one request."""
        return {"request_id": self.label, "receive_count": self.receive_count}


class _Lease:
    """Keeps a batch's messages hidden from other workers for as long as this one works on them.

    Messages are received with a short visibility (``first_s``): if the receive is abandoned (the
    worker is stopped while it waits on SQS), they come back within seconds, not after a minute.
    A third of the way into it, and every third of ``timeout_s`` after that, the lease pushes the
    timeout out to ``timeout_s``, so a slow batch (a loaded machine, a cold model) is never handed
    to a second worker while this one is alive. A quick batch costs no call at all.
    """

    def __init__(
        self, sqs: Any, queue_url: str, messages: list[dict[str, Any]], timeout_s: int, first_s: int
    ) -> None:
        self.sqs = sqs
        self.queue_url = queue_url
        self.receipts = [m["ReceiptHandle"] for m in messages]
        self.timeout_s = timeout_s
        self.first_s = first_s
        self._done = threading.Event()
        self._thread = threading.Thread(target=self._keep, name="lease", daemon=True)

    def start(self) -> _Lease:
        self._thread.start()
        return self

    def stop(self) -> None:
        """The batch is settled: extend no more (waits for an extension under way)."""
        self._done.set()
        self._thread.join()

    def _keep(self) -> None:
        interval = self.first_s / 3
        while not self._done.wait(interval):
            interval = self.timeout_s / 3
            for entries in entry_batches(self.receipts, VisibilityTimeout=self.timeout_s):
                try:
                    self.sqs.change_message_visibility_batch(QueueUrl=self.queue_url, Entries=entries)
                except Exception as exc:  # noqa: BLE001 - the conditional result write still guards
                    log.warning("could not extend the visibility of a batch: %s", exc)


class Worker:
    def __init__(
        self,
        settings: ImageSettings,
        classifier: BatchClassifier,
        s3: Any = None,
        sqs: Any = None,
        worker_id: str | None = None,
        results: ResultStore | None = None,
    ) -> None:
        self.settings = settings
        self.classifier = classifier
        self.s3 = s3 or aws.client(settings, "s3")
        self.sqs = sqs or aws.client(settings, "sqs")
        self.results = results or S3ResultStore(self.s3, settings.image_output_bucket)
        self.worker_id = worker_id or f"{socket.gethostname()}:{os.getpid()}"
        self.max_receives = self._max_receives()
        self.busy = threading.Event()  # set while a batch is in hand: worked on, or received ahead
        self.idle_since = time.time()  # wall clock, reported in heartbeats to the scaler
        self.metrics = LatencyWindow()  # what it answered lately, published on the heartbeat tick
        self._in_hand = 0  # batches received and not yet finished (at most 2: see run)
        self._in_hand_lock = threading.Lock()
        self._undeleted: deque[str] = deque(maxlen=UNDELETED_CAP)
        # Fetches and stores of one batch run side by side: each is one S3 round trip.
        self._pool = ThreadPoolExecutor(max_workers=8, thread_name_prefix="s3")
        # Receives the next batch and takes its images while this one is classified (run).
        self._ahead = ThreadPoolExecutor(max_workers=1, thread_name_prefix="receive")

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
        """Work until ``stop`` is set (between batches), or after ``max_idle_s`` with no work.

        While a batch is classified and answered, the next is received and its images taken on
        the ``receive`` thread (one batch ahead); a stop finishes that one too.
        """
        log.info("worker %s polling %s", self.worker_id, self.settings.request_queue_url)
        idle_since = time.monotonic()
        trouble = Backoff(AWS_TROUBLE_PAUSE_BASE_S, AWS_TROUBLE_PAUSE_CAP_S)  # counts batches in a row AWS failed
        ahead: Future[_Batch | None] | None = None  # the next batch, received while this one is worked on
        while not stop.is_set() or ahead is not None:
            outcome = BatchOutcome()
            current, ahead = ahead, None
            try:
                batch = current.result() if current is not None else self._receive()
                if batch is not None:
                    if not stop.is_set() and not batch.fetch_trouble:
                        ahead = self._ahead.submit(self._receive)
                    try:
                        outcome = self._finish(batch)
                    finally:
                        self._put_down()
                elif self._undeleted:
                    self._delete_undeleted()
            except Exception as exc:  # noqa: BLE001 - SQS unreachable after boto3's retries: keep going
                log.warning("could not poll %s: %s; trying again", self.settings.request_queue_url, exc)
                stop.wait(POLL_ERROR_BACKOFF_S)
            if outcome.aws_failures > outcome.answered:
                pause_s = trouble.next_wait()
                log.warning("AWS failed a batch; pausing", extra={"failed": outcome.aws_failures,
                            "answered": outcome.answered, "in_a_row": trouble.failures, "pause_s": round(pause_s, 2)})
                stop.wait(pause_s)
            elif outcome.received:
                trouble.reset()
            if outcome.received:
                idle_since = time.monotonic()
            elif ahead is None and max_idle_s is not None and time.monotonic() - idle_since >= max_idle_s:
                log.info("worker %s idle for %.0f s, stopping", self.worker_id, max_idle_s)
                break
        self._delete_before_stopping()

    def poll_once(self, wait_s: int | None = None) -> BatchOutcome:
        """One receive and the batch it got, worked through in this thread."""
        batch = self._receive(wait_s)
        if batch is None:
            return BatchOutcome()
        try:
            return self._finish(batch)
        finally:
            self._put_down()

    def _receive(self, wait_s: int | None = None) -> _Batch | None:
        """Receive a batch and take its images (:meth:`_prepare`); None if the queue had nothing.
        A batch returned is in hand (``busy``) until :meth:`_put_down`."""
        messages = self.sqs.receive_message(
            QueueUrl=self.settings.request_queue_url,
            MaxNumberOfMessages=self.settings.worker.batch_size,
            WaitTimeSeconds=self.settings.worker.long_poll_s if wait_s is None else wait_s,
            VisibilityTimeout=self._receive_visibility_s(),
            # SentTimestamp costs nothing extra and starts each answer's latency.
            MessageSystemAttributeNames=["ApproximateReceiveCount", "SentTimestamp"],
        ).get("Messages", [])
        if not messages:
            return None
        with self._in_hand_lock:
            self._in_hand += 1
            self.busy.set()
        try:
            return self._prepare(messages)
        except BaseException:
            self._put_down()
            raise

    def _put_down(self) -> None:
        """A batch in hand is finished; with none left the worker is idle from now."""
        with self._in_hand_lock:
            self._in_hand -= 1
            if self._in_hand == 0:
                self.idle_since = time.time()
                self.busy.clear()

    def _receive_visibility_s(self) -> int:
        return min(RECEIVE_VISIBILITY_S, self.settings.worker.visibility_timeout_s)

    def state(self) -> tuple[bool, float]:
        """(busy, idle since), for the heartbeat."""
        return self.busy.is_set(), self.idle_since

    def heartbeat(self, interval_s: float = HEARTBEAT_INTERVAL_S) -> HeartbeatPublisher:
        """The heartbeat thread (not started) that also publishes this worker's metrics when they
        changed; stopping it publishes them once more and leaves them in place."""
        bucket = self.settings.image_output_bucket
        metrics = MetricsPublisher(self.s3, bucket, self.worker_id, self.metrics)
        return HeartbeatPublisher(
            S3StatusStore(self.s3, bucket), self.worker_id, self.state, interval_s, also=metrics.publish_if_changed
        )

    # ---- one batch -----------------------------------------------------------------------

    def handle_batch(self, messages: list[dict[str, Any]]) -> BatchOutcome:
        """Work through received ``messages``: take their images, classify, answer, delete."""
        return self._finish(self._prepare(messages))

    def _prepare(self, messages: list[dict[str, Any]]) -> _Batch:
        """Parse the messages, lease them, and take their images: carried in the message, or
        fetched from S3 side by side."""
        items = [self._parse(m) for m in messages]
        log.info("batch received", extra={"batch_size": len(items), "requests": [i.label for i in items]})
        lease = _Lease(
            self.sqs, self.settings.request_queue_url, messages,
            self.settings.worker.visibility_timeout_s, self._receive_visibility_s(),
        )
        batch = _Batch(items, lease.start(), time.perf_counter())
        try:
            todo = [(item, item.request) for item in items if item.error is None and item.request is not None]
            fetched = [(item, request) for item, request in todo if not self._take_carried(item, request)]
            if fetched:
                list(self._pool.map(lambda pair: self._fetch(*pair), fetched))
            batch.fetch_ms = _ms_since(batch.started)
        except BaseException:
            lease.stop()
            raise
        return batch

    def _finish(self, batch: _Batch) -> BatchOutcome:
        """Classify the batch, store and send its answers, settle its failures, delete what is done."""
        items = batch.items
        outcome = BatchOutcome(received=len(items))
        try:
            done = self._answer_batch(items, outcome, batch.fetch_ms)
            failed = [item for item in items if item.error is not None]
            outcome.failed = len(failed)
            outcome.aws_failures = sum(1 for item in failed if item.error is not None and item.error.aws_trouble)
            outcome.dead_lettered = self._fail(failed)
        finally:
            batch.lease.stop()
        self._delete(done)
        log.info(
            "batch done",
            extra={
                "batch_size": outcome.received,
                "answered": outcome.answered,
                "repeated": outcome.duplicates,
                "failed": outcome.failed,
                "final_failures": outcome.dead_lettered,
                "batch_ms": _ms_since(batch.started),
            },
        )
        return outcome

    def _answer_batch(self, items: list[_Item], outcome: BatchOutcome, fetch_ms: float) -> list[_Item]:
        """Classify and answer the items whose images were taken; returns those to delete
        (answered or repeated)."""
        ready = [(item, item.request) for item in items
                 if item.request is not None and item.data is not None and item.error is None]
        started = time.perf_counter()
        top = max((request.top or 0 for _, request in ready), default=0)  # what the batch's answers list
        results = self.classifier.classify_bytes([item.data or b"" for item, _ in ready], top=top) if ready else []
        classify_ms = _ms_since(started)
        answers: list[tuple[_Item, ImageResult]] = []
        for (item, request), result in zip(ready, results, strict=True):
            if isinstance(result, Exception):
                code = getattr(result, "code", "classification_failed")
                item.error = ProcessingError(code, getattr(result, "message", str(result)))
            else:
                answers.append((item, ImageResult.done(request, result)))
        started = time.perf_counter()
        stored = self._answer(answers)
        store_ms = _ms_since(started)
        done: list[_Item] = []
        for item, answer in answers:
            first = stored.get(item.message["ReceiptHandle"])
            if first is None:
                continue  # not stored: the queue retries it
            done.append(item)
            if first:
                outcome.answered += 1
            else:  # another delivery of the same request got there first; its answer stands
                outcome.duplicates += 1
            log.info(
                "answered" if first else "repeated delivery retired",
                extra={**item.fields(), "label": answer.label, "batch_size": len(ready), "fetch_ms": fetch_ms,
                       "classify_ms": classify_ms, "store_ms": store_ms},
            )
        return done

    def _parse(self, message: dict[str, Any]) -> _Item:
        item = _Item(message)
        try:
            item.request = ImageRequest.from_message(message.get("Body", ""))
        except MalformedRequest as exc:
            item.error = ProcessingError("malformed_request", str(exc))
        return item

    def _take_carried(self, item: _Item, request: ImageRequest) -> bool:
        """Take the image the message carries, held to the same byte limit as a fetched one
        (garbled base64 is a recorded failure); False if it carries none."""
        if request.image_b64 is None:
            return False
        limit = self.settings.limits.max_image_bytes
        if len(request.image_b64) > base64_length(limit):  # decoded, it would be over the limit
            item.error = ProcessingError("too_large", f"the image is over {limit} bytes")
            return True
        try:
            data = request.carried_image()
        except MalformedRequest as exc:
            item.error = ProcessingError("malformed_request", str(exc))
            return True
        if data is not None and len(data) <= limit:
            item.data = data
        else:
            item.error = ProcessingError("too_large", f"the image is over {limit} bytes")
        return True

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
            else:  # the message names AWS's error code (SlowDown, ...) and the attempts made
                item.error = ProcessingError("fetch_failed", str(exc), aws_trouble=True)

    def _answer(self, answers: list[tuple[_Item, ImageResult]]) -> dict[str, bool]:
        """Store each answer (in parallel), then reply to the waiting web processes and (with
        ``announce``) announce the new answers on the response queue, a batch call per queue.

        Returns receipt -> True (stored now), False (answered before: a repeated delivery) for
        each answer that is settled; one that could not be stored is left out, with its error.
        """
        def store(pair: tuple[_Item, ImageResult]) -> tuple[_Item, ImageResult, str, bool | None]:
            item, answer = pair
            body = answer.to_json()
            try:
                return item, answer, body, self.results.put_first(answer, body)
            except Exception as exc:  # noqa: BLE001 - keep the message; it will be retried
                log.warning("could not store the result", extra={**item.fields(), "error": str(exc)})
                item.error = ProcessingError("store_failed", str(exc), aws_trouble=True)
                return item, answer, body, None

        stored = list(self._pool.map(store, answers))
        unqueued = {id(item) for item in self._queue_callbacks([(i, a) for i, a, _, first in stored if first is not None])}
        new = [(item, answer, body) for item, answer, body, first in stored if first]
        replies: dict[str, list[str]] = {}
        for item, _, body in new:
            reply_to = answer_to(item.request, self.settings)
            if reply_to:
                replies.setdefault(reply_to, []).append(body)
        for url, batch in replies.items():
            self._send(url, batch, "reply")
        if new and self.settings.worker.announce:
            self._send(self.settings.response_queue_url, [body for _, _, body in new], "announce")
        # Only the first answer counts: a repeated delivery was counted by whoever stored it.
        sent = time.time()
        for item, answer, _ in new:
            sent_at = item.sent_at
            reason = answer.error.code if answer.error is not None else "unknown"
            self.metrics.record(None if sent_at is None else sent - sent_at, answer.status == "failed", sent, reason)
        return {
            item.message["ReceiptHandle"]: first for item, _, _, first in stored if first is not None and id(item) not in unqueued
        }

    def _queue_callbacks(self, stored: list[tuple[_Item, ImageResult]]) -> list[_Item]:
        """Put each stored answer whose request names a callback on the callback queue (one batch
        call per ten). Also a repeated delivery's: its first may have stopped before this, and a
        receiver drops a repeat by its delivery id. Returns those the queue did not take, with their
        error: their messages are kept, so that the queue delivers them again (and this is tried again)."""
        wanted = [(item, answer) for item, answer in stored if item.request is not None and item.request.callback]
        if not wanted:
            return []  # no call at all for requests without a callback
        bodies = [
            CallbackJob(str(item.request.callback), answer.id, json.dumps(answer.public(), separators=(",", ":"))).to_message()
            for item, answer in wanted if item.request is not None
        ]
        url = self.settings.callback_queue_url
        try:
            if url is None:
                raise RuntimeError("this worker has no callback queue (IRAAS_CALLBACK_QUEUE_URL)")
            failed = send_each(self.sqs, url, bodies)
        except Exception as exc:  # noqa: BLE001 - keep the messages; they will be retried
            failed = dict.fromkeys(range(len(bodies)), str(exc))
        unqueued = []
        for index, reason in failed.items():
            item = wanted[index][0]
            log.warning("could not queue the callback", extra={**item.fields(), "error": reason})
            item.error = item.error or ProcessingError("callback_queue_failed", reason, aws_trouble=True)
            unqueued.append(item)
        return unqueued

    def _send(self, url: str, bodies: list[str], what: str) -> None:
        """Best effort: the stored answer is what counts; a lost reply makes its waiter read S3."""
        try:
            failures = send_batches(self.sqs, url, bodies)
        except Exception as exc:  # noqa: BLE001 - e.g. a reply queue swept after its web process died
            failures = [str(exc)]
        if failures:
            log.warning(f"could not {what}", extra={"queue": url, "count": len(bodies), "error": failures[0]})

    def _fail(self, items: list[_Item]) -> int:
        """Settle failed messages. A request whose failure is permanent (its image can never be
        classified) gets its failed answer now and its message is deleted: trying again could only
        fail again, three times over. Any other failure is left to the queue to try again; on its
        last attempt its reason is recorded and SQS moves it to the dead-letter queue. Returns how
        many were final."""
        finals: list[tuple[_Item, ImageResult]] = []
        for item in items:
            error = item.error or ProcessingError("unknown", "failed without a reason")
            request = item.request
            final = self._final(item)
            log.warning(
                "request failed",
                extra={**item.fields(), "max_receives": self.max_receives, "final": final,
                       "code": error.code, "error": error.message},
            )
            try:
                if final and request is not None:
                    finals.append((item, ImageResult.failed(request.id, request.name, error.code, error.message)))
                elif final:
                    self.results.record_unreadable(
                        item.message.get("MessageId", ""), error.code, error.message, item.message.get("Body", "")
                    )
            except Exception as exc:  # noqa: BLE001 - the message simply reappears after its timeout
                log.warning("could not record the failure", extra={**item.fields(), "error": str(exc)})
        answered = self._answer(finals) if finals else {}  # the waiting request gets its 422 now
        settled = [item for item in items if item.message["ReceiptHandle"] in answered and self._permanent(item)]
        self._delete(settled)  # answered for good: nothing to try again
        count = len(settled)
        for item in items:
            if any(item is done for done in settled):
                continue
            final = item.receive_count >= self.max_receives
            count += final
            # Sooner than the visibility timeout: retry soon, or (if final) let SQS move it to the
            # dead-letter queue on its next receive.
            try:
                self.sqs.change_message_visibility(
                    QueueUrl=self.settings.request_queue_url,
                    ReceiptHandle=item.message["ReceiptHandle"],
                    VisibilityTimeout=0 if final else self.settings.worker.retry_delay_s,
                )
            except Exception as exc:  # noqa: BLE001 - the message simply reappears after its timeout
                log.warning("could not release a failed message", extra={**item.fields(), "error": str(exc)})
        return count

    def _final(self, item: _Item) -> bool:
        return item.receive_count >= self.max_receives or self._permanent(item)

    @staticmethod
    def _permanent(item: _Item) -> bool:
        """A request (not a message that is none: that one is kept, for the dead-letter queue) whose
        failure a later try would repeat."""
        return item.request is not None and item.error is not None and item.error.permanent

    def _delete(self, items: list[_Item]) -> None:
        """Delete the answered ``items``' messages, with any whose delete failed before."""
        self._undeleted.extend(item.message["ReceiptHandle"] for item in items)
        self._delete_undeleted()

    def _delete_undeleted(self) -> bool:
        """One try at every receipt still to delete; True when none is left. A call AWS fails
        (after boto3's retries) or an entry it refuses for its own reasons is kept for the next try;
        an entry refused as the sender's fault (a receipt no longer valid) is dropped."""
        receipts, kept = list(self._undeleted), list[str]()
        self._undeleted.clear()
        for entries in entry_batches(receipts):
            by_id = {entry["Id"]: entry["ReceiptHandle"] for entry in entries}
            try:
                response = self.sqs.delete_message_batch(QueueUrl=self.settings.request_queue_url, Entries=entries)
            except Exception as exc:  # noqa: BLE001 - SQS unreachable after boto3's retries
                log.warning("could not delete %d answered messages: %s; trying again later", len(entries), exc)
                kept.extend(by_id.values())
                continue
            for failure in response.get("Failed", []):
                # The answer is stored; a redelivery would be recognised and retired.
                log.warning("could not delete a message", extra={"failure": failure})
                if not failure.get("SenderFault", False):
                    kept.append(by_id[failure["Id"]])
        self._undeleted.extend(kept)
        return not self._undeleted

    def _delete_before_stopping(self) -> None:
        """A stopping worker's last tries at the deletes that failed, so its answered requests do not
        come back to another worker as repeats."""
        pause = Backoff(AWS_TROUBLE_PAUSE_BASE_S, POLL_ERROR_BACKOFF_S)
        for _ in range(FINAL_DELETE_TRIES):
            if self._delete_undeleted():
                return
            time.sleep(pause.next_wait())
        log.warning("%d answered messages left undeleted; they will be retired as repeats", len(self._undeleted))


def answer_to(request: ImageRequest | None, settings: ImageSettings) -> str | None:
    """Where the request's reply goes: its ``reply_to`` if that is one of this stack's reply
    queues; None when nobody waits, or the message names another queue (logged, ignored)."""
    if request is None or not request.reply_to:
        return None
    if is_reply_queue(request.reply_to, settings.reply_queue_prefix, settings.request_queue_url):
        return request.reply_to
    log.warning("ignored a reply_to that is no reply queue of this stack", extra={"request_id": request.id,
                "reply_to": request.reply_to[:200]})
    return None


def _ms_since(started: float) -> float:
    return round((time.perf_counter() - started) * 1000, 1)


def serve(settings: ImageSettings, ready_file: str | None = None, max_idle_s: float | None = None) -> None:
    """The worker process: load and warm the model, then work until SIGTERM/SIGINT.

    A signal stops the worker after its current receive and the batches it holds (the one worked
    on, and one received ahead): a receive given up half-way would still take messages in SQS (or
    moto) for nobody, each a receive counted towards the dead-letter queue. So a stop takes up to
    the long poll (``IRAAS_WORKER_LONG_POLL_S``; the systemd unit allows 90 s, ``iraas up`` polls
    for 2 s) plus two batches.
    """
    import signal

    from iraas.images.model.runtime import load_classifier

    # Named before the model loads: a worker forked from the zygote shows its own title from here on.
    set_title(worker_title(os.environ.get("IRAAS_WORKER_ID") or None), stack_of())
    classifier = load_classifier(
        settings.model_dir,
        threads=settings.worker.threads,
        max_pixels=settings.limits.max_image_pixels,
        model=settings.model,
        runtime=settings.runtime,
    )
    worker = Worker(settings, classifier, worker_id=os.environ.get("IRAAS_WORKER_ID") or None)
    heartbeat = worker.heartbeat(HEARTBEAT_INTERVAL_S)
    stop = threading.Event()

    def on_signal(signum: int, _frame: Any) -> None:
        stop.set()
        log.info("signal %d: finishing the current receive and its batch before stopping", signum)

    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGINT, on_signal)
    if ready_file:
        with open(ready_file, "w") as f:
            f.write(worker.worker_id)
    heartbeat.start()
    log.info("worker %s ready", worker.worker_id)
    try:
        worker.run(stop, max_idle_s=max_idle_s)
    finally:
        heartbeat.stop()
    log.info("worker %s stopped", worker.worker_id)
