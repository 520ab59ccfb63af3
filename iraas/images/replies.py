"""Results pushed to the waiting request, never polled: one reply queue per web process.

The request-response pattern of AWS's Temporary Queue Client and of AMQP's reply-to: each web
process (chalice local, a gunicorn worker, an OpenStack server) or Lambda execution environment
creates its own reply queue at its start; a request message names it (``reply_to``) and the
request id is the correlation id; the worker sends the result there. No process ever reads
another's replies, so any number of web processes and hosts can share the request queue.

- In a threaded process one dispatcher thread long-polls the queue and wakes the waiting request.
- On Lambda (one request at a time per environment, no background threads) the invocation itself
  long-polls its environment's queue; a late reply for an earlier, timed-out request is dropped
  there, since S3 holds every answer.

S3 stays the durable answer: a waiter whose reply is lost reads S3 once at its deadline. Reply
queues keep a message 60 s (SQS's minimum), and carry an ``iraas:alive`` tag that their owner
refreshes every minute; a schedule of its own (the web tier's ``sweep_replies``, ``iraas up``'s supervisor)
deletes those not refreshed for ``SWEEP_IDLE_S``
(crashed hosts, recycled Lambda environments).
"""

from __future__ import annotations

import atexit
import logging
import os
import threading
import time
import uuid
from collections.abc import Callable
from typing import Any, Protocol
from urllib.parse import urlparse

from botocore.exceptions import ClientError

from iraas import aws
from iraas.images.jobs import ImageResult
from iraas.images.settings import ImageSettings
from iraas.queues import BATCH_LIMIT, NO_SUCH_QUEUE, entry_batches

log = logging.getLogger(__name__)

ALIVE_TAG = "iraas:alive"
RETENTION_S = 60  # SQS's minimum: a reply nobody reads is gone within a minute
TOUCH_EVERY_S = 60.0  # how often an owner refreshes its queue's alive tag
SWEEP_IDLE_S = 600.0  # a queue not refreshed for this long has no owner any more
_LONG_POLL_S = 20  # SQS's longest
_ERROR_BACKOFF_S = 1.0
_MAX_QUEUE_NAME = 80
_DELETED_RECENTLY = frozenset({"AWS.SimpleQueueService.QueueDeletedRecently", "QueueDeletedRecently"})


def new_queue_name(prefix: str) -> str:
    return (prefix + uuid.uuid4().hex)[:_MAX_QUEUE_NAME]


def create_reply_queue(sqs: Any, prefix: str, now: float | None = None, name: str | None = None) -> str:
    """A reply queue of this process (``name``, or a new one), tagged alive now; returns its URL."""
    stamp = str(int(time.time() if now is None else now))
    return str(
        sqs.create_queue(
            QueueName=name or new_queue_name(prefix),
            Attributes={"MessageRetentionPeriod": str(RETENTION_S)},
            tags={ALIVE_TAG: stamp, "iraas:role": "reply"},
        )["QueueUrl"]
    )


def is_reply_queue(url: str, prefix: str, request_queue_url: str) -> bool:
    """Whether a request's ``reply_to`` is one of this stack's reply queues.

    Checked by the worker before it sends there: a forged message must not make it send to
    another host, or to a queue that is not a reply queue.
    """
    parsed, home = urlparse(url), urlparse(request_queue_url)
    name = parsed.path.rsplit("/", 1)[-1]
    same_place = (parsed.scheme, parsed.netloc) == (home.scheme, home.netloc)
    return same_place and name.startswith(prefix) and len(name) > len(prefix) and "/" not in name[len(prefix) :]


def sweep_idle(sqs: Any, prefix: str, now: float | None = None, idle_s: float = SWEEP_IDLE_S) -> list[str]:
    """Delete the reply queues whose owner stopped refreshing them; returns their URLs."""
    now = time.time() if now is None else now
    swept = []
    for url in sqs.list_queues(QueueNamePrefix=prefix, MaxResults=1000).get("QueueUrls", []):
        try:
            tags = sqs.list_queue_tags(QueueUrl=url).get("Tags", {})
            if now - float(tags.get(ALIVE_TAG, 0)) > idle_s:
                sqs.delete_queue(QueueUrl=url)
                swept.append(url)
        except Exception as exc:  # noqa: BLE001 - gone meanwhile, or not ours to read: next sweep
            log.info("could not sweep reply queue %s: %s", url, exc)
    if swept:
        log.info("swept %d idle reply queues", len(swept))
    return swept


def sweep_idle_reply_queues(settings: ImageSettings) -> list[str]:
    """:func:`sweep_idle` on the stack's reply queues (the web tier's ``sweep_replies`` schedule)."""
    return sweep_idle(aws.client(settings, "sqs"), settings.reply_queue_prefix)


class Replies(Protocol):
    """What the web use cases need: a queue to name, and a wait for one request's answer."""

    def expect(self, request_id: str) -> str:
        """Register interest in ``request_id`` before its request is sent; returns ``reply_to``."""

    def wait(self, request_id: str, timeout_s: float) -> ImageResult | None:
        """The reply for ``request_id``, or None after ``timeout_s``."""

    def forget(self, request_id: str) -> None:
        """Drop the interest (the request was never sent)."""

    def close(self) -> None:
        """Stop listening and delete this process's reply queue (also done at exit)."""

    def release_all(self) -> None:
        """Wake every waiting request now, with no result (the process is stopping)."""


class _Slot:
    def __init__(self) -> None:
        self.ready = threading.Event()
        self.result: ImageResult | None = None


class _OwnQueue:
    """This process's reply queue: created on first use, refreshed, deleted at exit if possible."""

    def __init__(self, sqs: Any, prefix: str, clock: Callable[[], float] = time.time) -> None:
        self.sqs, self.prefix, self.clock = sqs, prefix, clock
        self._url: str | None = None
        self._name: str | None = None  # kept when the queue is lost, so that it comes back where replies go
        self._lock = threading.Lock()
        self._touched = 0.0
        self._pid = os.getpid()

    @property
    def url(self) -> str:
        with self._lock:
            if self._url is None or self._pid != os.getpid():  # a forked child makes its own
                if self._pid != os.getpid():
                    self._pid, self._name = os.getpid(), None
                self._name = self._name or new_queue_name(self.prefix)
                self._url = self._create()
                self._touched = self.clock()
                atexit.register(self.delete)
                log.info("reply queue %s", self._url)
            return self._url

    def _create(self) -> str:
        """The queue under its name; a new name where SQS refuses the old one for a while after a
        delete (``QueueDeletedRecently``: swept while this process slept)."""
        try:
            return create_reply_queue(self.sqs, self.prefix, self.clock(), self._name)
        except ClientError as exc:
            if aws.error_code(exc) not in _DELETED_RECENTLY:
                raise
            self._name = new_queue_name(self.prefix)
            return create_reply_queue(self.sqs, self.prefix, self.clock(), self._name)

    def touch(self) -> None:
        """Refresh the alive tag, at most once a minute (one TagQueue call)."""
        now = self.clock()
        if now - self._touched < TOUCH_EVERY_S:
            return
        self._touched = now
        if self._url is None or self._pid != os.getpid():
            return  # made on first use, tagged alive then
        try:
            self.sqs.tag_queue(QueueUrl=self._url, Tags={ALIVE_TAG: str(int(now))})
        except Exception as exc:  # noqa: BLE001 - a missed refresh only shortens its life
            if not self.lost(exc):
                log.warning("could not refresh reply queue %s: %s", self._url, exc)

    def receive(self, wait_s: int) -> list[dict[str, Any]]:
        messages: list[dict[str, Any]] = self.sqs.receive_message(
            QueueUrl=self.url, MaxNumberOfMessages=BATCH_LIMIT, WaitTimeSeconds=wait_s
        ).get("Messages", [])
        try:
            for entries in entry_batches([m["ReceiptHandle"] for m in messages]):
                self.sqs.delete_message_batch(QueueUrl=self.url, Entries=entries)
        except Exception as exc:  # noqa: BLE001 - deliver them anyway; a reply seen twice wakes nobody twice
            log.warning("could not delete %d received replies: %s", len(messages), exc)
        return messages

    def lost(self, exc: Exception) -> bool:
        """A missing queue (swept while this process slept, or an embedded endpoint restarted
        without it): made again on next use, under the same name, so that replies to requests
        already sent still arrive."""
        if isinstance(exc, ClientError) and aws.error_code(exc) in NO_SUCH_QUEUE:
            with self._lock:
                self._url = None
            return True
        return False

    def delete(self) -> None:
        atexit.unregister(self.delete)
        with self._lock:
            url, self._url, self._name = self._url, None, None
        if url:
            try:
                self.sqs.delete_queue(QueueUrl=url)
            except Exception as exc:  # noqa: BLE001 - the sweeper removes it later
                log.info("could not delete reply queue %s: %s", url, exc)


def _parse(message: dict[str, Any]) -> ImageResult | None:
    try:
        return ImageResult.from_json(message["Body"])
    # AttributeError: JSON that is not an object ("1", "[]"); RecursionError: nested too deeply.
    except (KeyError, TypeError, ValueError, AttributeError, RecursionError) as exc:
        log.warning("dropped a reply that is not a result: %s", exc)
        return None


class ReplyDispatcher:
    """One thread per process long-polls its reply queue and wakes the waiting requests."""

    def __init__(self, sqs: Any, prefix: str, clock: Callable[[], float] = time.time) -> None:
        self.queue = _OwnQueue(sqs, prefix, clock)
        self._slots: dict[str, list[_Slot]] = {}
        self._lock = threading.Lock()
        self._thread: threading.Thread | None = None
        self._stop = threading.Event()

    def expect(self, request_id: str) -> str:
        self.queue.touch()  # at most once a minute; a queue swept while idle is made anew
        url = self.queue.url
        with self._lock:
            self._slots.setdefault(request_id, []).append(_Slot())
            if self._thread is None:  # listens while anyone waits
                self._stop.clear()
                self._thread = threading.Thread(target=self._run, name="replies", daemon=True)
                self._thread.start()
        return url

    def forget(self, request_id: str) -> None:
        with self._lock:
            slots = self._slots.get(request_id, [])
            if slots:
                slots.pop()
            if not slots:
                self._slots.pop(request_id, None)

    def wait(self, request_id: str, timeout_s: float) -> ImageResult | None:
        with self._lock:
            slots = self._slots.get(request_id)
            slot = slots[-1] if slots else None
        if slot is None:
            return None
        slot.ready.wait(max(0.0, timeout_s))
        with self._lock:
            waiting = self._slots.get(request_id, [])
            if slot in waiting:
                waiting.remove(slot)
            if not waiting:
                self._slots.pop(request_id, None)
        return slot.result

    def deliver(self, result: ImageResult) -> bool:
        """Wake every request waiting for ``result.id``; False if none is (a late reply)."""
        with self._lock:
            slots = list(self._slots.get(result.id, []))
        for slot in slots:
            slot.result = result
            slot.ready.set()
        return bool(slots)

    def close(self) -> None:
        self._stop.set()
        self.queue.delete()

    def release_all(self) -> None:
        """Wake every waiting request with no result (the process is stopping; each then reads S3
        once and answers with what it finds)."""
        with self._lock:
            slots = [slot for waiting in self._slots.values() for slot in waiting]
        for slot in slots:
            slot.ready.set()

    def _run(self) -> None:
        while not self._stop.is_set():
            try:
                messages = self.queue.receive(_LONG_POLL_S)
            except Exception as exc:  # noqa: BLE001 - waiters fall back to S3 at their deadline
                if not self.queue.lost(exc):
                    log.warning("could not receive replies: %s", exc)
                    self._stop.wait(_ERROR_BACKOFF_S)
                messages = []
            for message in messages:
                result = _parse(message)
                if result is not None and not self.deliver(result):
                    log.info("late reply for %s dropped (S3 has it)", result.id)
            with self._lock:
                if self._stop.is_set() or (not messages and not self._slots):
                    self._thread = None  # nobody waits: stop polling until someone does
                    return


class InlineReplies:
    """Lambda: the invocation long-polls its environment's queue while it waits (no threads)."""

    def __init__(self, sqs: Any, prefix: str, clock: Callable[[], float] = time.monotonic) -> None:
        self.queue = _OwnQueue(sqs, prefix)
        self.clock = clock
        self._expected: set[str] = set()

    def expect(self, request_id: str) -> str:
        self._expected.add(request_id)
        self.queue.touch()
        return self.queue.url

    def forget(self, request_id: str) -> None:
        self._expected.discard(request_id)

    def close(self) -> None:
        self.queue.delete()

    def release_all(self) -> None:
        pass  # Lambda stops an environment between invocations, never during one

    def wait(self, request_id: str, timeout_s: float) -> ImageResult | None:
        if request_id not in self._expected:
            return None
        deadline = self.clock() + max(0.0, timeout_s)
        try:
            while (left := deadline - self.clock()) > 0:
                try:
                    messages = self.queue.receive(max(0, min(_LONG_POLL_S, int(left))))
                except Exception as exc:  # noqa: BLE001 - fall back to S3 at the deadline
                    self.queue.lost(exc)
                    log.warning("could not receive replies: %s", exc)
                    return None
                for message in messages:
                    result = _parse(message)
                    if result is not None and result.id == request_id:
                        return result
                    if result is not None:
                        log.info("late reply for %s dropped (S3 has it)", result.id)
                if left < 1:
                    return None
            return None
        finally:
            self._expected.discard(request_id)


def replies_for_this_process(sqs: Any, prefix: str) -> Replies:
    """Inline polling on Lambda (``AWS_LAMBDA_FUNCTION_NAME`` is set there), a dispatcher elsewhere."""
    if aws.on_lambda():
        return InlineReplies(sqs, prefix)
    return ReplyDispatcher(sqs, prefix)
