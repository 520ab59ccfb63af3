"""The callback function's work: deliver each job, and settle it: delivered, tried again later, or failed.

A job the receiver does not take (not a 2xx, a timeout, DNS without an answer) goes back on the
callback queue with the next attempt's number and a jittered delay that doubles each time (up to
SQS's 15 minutes), until ``max_attempts``; then, or at once for a destination the policy refuses or
a message that is no job, it is kept on the callback dead-letter queue with its reason: that queue's
depth is the count of failed deliveries (``GET /v1/stats``). Each job is settled by a new message
before the old one is deleted, so that nothing is lost between them: delivery is at least once, and
receivers drop repeats by the ``Iraas-Delivery`` header.
"""

from __future__ import annotations

import json
import logging
import math
import socket
import time
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlsplit

from iraas import aws
from iraas.aws import Backoff
from iraas.callbacks import delivery
from iraas.callbacks.jobs import CallbackJob, MalformedJob
from iraas.callbacks.policy import RefusedDestination, Resolver, UnresolvedHost
from iraas.callbacks.settings import MAX_DELAY_S, CallbackSettings

log = logging.getLogger(__name__)

DELIVERED, RETRIED, FAILED = "delivered", "retried", "failed"
THREADS = 10  # one per message of a Lambda batch: a slow receiver does not hold up the others


@dataclass
class SendOutcome:
    counts: dict[str, int] = field(default_factory=lambda: {DELIVERED: 0, RETRIED: 0, FAILED: 0})
    # Messages whose retry or failure could not be queued: the queue must keep them (Lambda's
    # batchItemFailures), so that they are tried again.
    unsettled: list[str] = field(default_factory=list)


class CallbackSender:
    def __init__(
        self, settings: CallbackSettings, secret: bytes, sqs: Any = None, resolver: Resolver = socket.getaddrinfo,
        post: Callable[..., delivery.Attempt] = delivery.post,
    ) -> None:
        self.settings = settings
        self.secret = secret
        self.sqs = sqs or aws.client(settings, "sqs")
        self.resolver = resolver
        self.post = post

    def handle(self, messages: Sequence[tuple[str, str]]) -> SendOutcome:
        """Deliver and settle each ``(message id, body)``, side by side."""
        outcome = SendOutcome()
        if not messages:
            return outcome
        with ThreadPoolExecutor(max_workers=min(THREADS, len(messages)), thread_name_prefix="callback") as pool:
            settled = list(pool.map(lambda message: self._settle(message[1]), messages))
        for (message_id, _), result in zip(messages, settled, strict=True):
            if result is None:
                outcome.unsettled.append(message_id)
            else:
                outcome.counts[result] += 1
        return outcome

    def _settle(self, body: str) -> str | None:
        """What became of one job; None if the queue could not take its retry or its failure."""
        try:
            job = CallbackJob.from_message(body)
        except MalformedJob as exc:
            return self._fail(body, None, str(exc))
        try:
            destination = self.settings.policy.resolve(job.url, self.resolver)
        except RefusedDestination as exc:
            return self._fail(body, job, f"refused: {exc}")
        except UnresolvedHost as exc:
            attempt = delivery.Attempt(False, str(exc))
        else:
            attempt = self.post(destination, job.body.encode(), self.secret, job.delivery_id, self.settings.timeout_s)
        fields = {"delivery_id": job.delivery_id, "attempt": job.attempt, "host": destination_host(job.url)}
        if attempt.delivered:
            log.info("callback delivered", extra=fields)
            return DELIVERED
        if job.attempt >= self.settings.max_attempts:
            return self._fail(body, job, f"{attempt.reason}, after {job.attempt} attempts")
        delay_s = self.retry_delay_s(job.attempt)
        try:
            self.sqs.send_message(
                QueueUrl=self.settings.queue_url, MessageBody=job.next_attempt().to_message(), DelaySeconds=delay_s
            )
        except Exception as exc:  # noqa: BLE001 - leave the message to the queue instead
            log.warning("could not queue a callback's retry", extra={**fields, "error": str(exc)})
            return None
        log.warning("callback not delivered; trying again", extra={**fields, "reason": attempt.reason, "in_s": delay_s})
        return RETRIED

    def retry_delay_s(self, attempt: int) -> int:
        """The pause before attempt ``attempt + 1``: jittered, ``retry_base_s * 2^(attempt-1)`` at most,
        whole seconds (SQS's DelaySeconds), at most 15 minutes."""
        wait_s = Backoff(self.settings.retry_base_s, MAX_DELAY_S, failures=attempt - 1).next_wait()
        return min(MAX_DELAY_S, math.ceil(wait_s))

    def _fail(self, body: str, job: CallbackJob | None, reason: str) -> str | None:
        fields = {"delivery_id": job.delivery_id if job else None, "reason": reason}
        log.error("callback failed", extra=fields)
        if self.settings.dead_letter_queue_url:
            record = {"v": 1, "reason": reason, "failed_at": time.time(), "job": body}
            try:
                self.sqs.send_message(QueueUrl=self.settings.dead_letter_queue_url, MessageBody=json.dumps(record))
            except Exception as exc:  # noqa: BLE001 - leave the message to the queue instead
                log.warning("could not record a failed callback", extra={**fields, "error": str(exc)})
                return None
        return FAILED


def destination_host(url: str) -> str:
    """The host a log line names (never the path or query, which may carry a receiver's token)."""
    try:
        return urlsplit(url).hostname or "?"
    except ValueError:
        return "?"
