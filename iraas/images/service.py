"""The image service's use cases, one per route: accept an image (and wait for its answer), find a
caller's answer by id, report the queue and the fleet, report recent throughput.

Waiting is pushed, not polled: the request names this process's reply queue and the worker
answers there (``iraas.images.replies``). S3 is the durable answer (``ResultStore``): a find by
id reads it, and a waiter whose reply does not come reads it once at its deadline.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass, replace
from typing import Any

from iraas import aws
from iraas.callbacks.policy import RefusedDestination
from iraas.errors import InvalidRequest, NotFound
from iraas.images.jobs import (
    ImageRequest,
    ImageResult,
    id_for_idempotency_key,
    input_key,
    input_prefix,
    is_valid_id,
    name_from_input_key,
    new_id,
)
from iraas.images.metrics import recent_metrics
from iraas.images.replies import Replies, replies_for_this_process
from iraas.images.results import ResultStore, S3ResultStore
from iraas.images.settings import ImageSettings
from iraas.media.uploads import RejectedPart, Upload
from iraas.queues import BatchSender, queue_depth
from iraas.scaling.status import S3StatusStore

# How long a send waits for concurrent requests' sends to share its SendMessageBatch call.
SEND_LINGER_S = 0.005
# A batch's images are stored and queued this many at a time (each is an S3 PUT and a send).
BATCH_THREADS = 8


@dataclass(frozen=True)
class Submission:
    """An accepted image's request, and its answer when there is one: it came within the wait, or
    the request is a retry (the same idempotency key) of one already answered."""

    request: ImageRequest
    result: ImageResult | None = None


class ImageService:
    def __init__(
        self, settings: ImageSettings, s3: Any = None, sqs: Any = None, replies: Replies | None = None,
        results: ResultStore | None = None,
    ) -> None:
        self.settings = settings
        self.s3 = s3 or aws.client(settings, "s3")
        self.sqs = sqs or aws.client(settings, "sqs")
        self.results = results or S3ResultStore(self.s3, settings.image_output_bucket)
        self.replies = replies or replies_for_this_process(self.sqs, settings.reply_queue_prefix)
        # One request at a time on Lambda: nothing to gather there.
        self.requests = BatchSender(self.sqs, settings.request_queue_url, 0.0 if aws.on_lambda() else SEND_LINGER_S)

    def close(self) -> None:
        """Stop the request sender's threads and delete this process's reply queue."""
        self.requests.close()
        self.replies.close()

    def submit(
        self, upload: Upload, owner: str, idempotency_key: str | None = None, wait_s: float = 0.0,
        top: int | None = None, callback: str | None = None,
    ) -> Submission:
        """Accept the image (:meth:`accept`) and wait up to ``wait_s`` for its answer (:meth:`wait`)."""
        submission = self.accept(upload, owner, idempotency_key, expect_answer=wait_s > 0, top=top, callback=callback)
        if submission.result is not None or wait_s <= 0:
            return submission
        return self.wait(submission, wait_s)

    def submit_batch(
        self, parts: Sequence[Upload | RejectedPart], owner: str, wait_s: float = 0.0, top: int | None = None,
        callback: str | None = None,
    ) -> list[Submission | RejectedPart]:
        """Accept each image of a batch (stored and queued side by side), then wait up to ``wait_s``
        in all for their answers; a rejected part stays in its place, and fails nothing else. An image
        that AWS would not take (after boto3's retries) is a part rejected as ``unavailable``, so the
        caller still learns the ids of the others; if AWS took none, that error is raised (a 503). With
        a ``callback``, each image's answer is POSTed there on its own."""
        self.check_callback(callback)
        uploads = [part for part in parts if isinstance(part, Upload)]

        def accept(upload: Upload) -> Submission | Exception:
            try:
                return self.accept(upload, owner, expect_answer=wait_s > 0, top=top, callback=callback)
            except Exception as exc:  # noqa: BLE001 - only AWS trouble is the part's own; see below
                if not aws.is_unavailable(exc):
                    raise
                return exc

        with ThreadPoolExecutor(max_workers=min(BATCH_THREADS, max(1, len(uploads)))) as pool:
            outcomes = list(pool.map(accept, uploads))
        failed = [outcome for outcome in outcomes if isinstance(outcome, Exception)]
        if failed and len(failed) == len(outcomes):
            raise failed[0]
        accepted = iter(outcomes)
        submissions = [self._batch_part(part, next(accepted)) if isinstance(part, Upload) else part for part in parts]
        if wait_s <= 0:
            return submissions
        deadline = time.monotonic() + wait_s
        return [
            self.wait(part, max(0.0, deadline - time.monotonic())) if isinstance(part, Submission) else part
            for part in submissions
        ]

    @staticmethod
    def _batch_part(upload: Upload, outcome: Submission | Exception) -> Submission | RejectedPart:
        if isinstance(outcome, Submission):
            return outcome
        return RejectedPart(
            upload.name, "unavailable", f"storage or queue unreachable or throttling; this image was not accepted, "
            f"send it again ({outcome})",
        )

    def accept(
        self, upload: Upload, owner: str, idempotency_key: str | None = None, expect_answer: bool = False,
        top: int | None = None, callback: str | None = None,
    ) -> Submission:
        """Store the image under its caller (``owner``, see ``iraas.web.auth.caller_identity``), then
        queue a request that points at it (and carries it, if it is small: ``ImageRequest.carrying``);
        with ``expect_answer`` the request names this process's reply queue, for :meth:`wait`.

        With an ``idempotency_key`` (the caller's own: another caller's same key is another request),
        a repeated submission is recognised: it is not stored again, and is queued again only if it
        has no answer yet (its first send may have failed); one that has an answer carries it.

        With a ``callback`` URL (:meth:`check_callback`), the worker has the answer POSTed there.
        """
        self.check_callback(callback)
        try:
            request_id = id_for_idempotency_key(idempotency_key, owner) if idempotency_key is not None else None
        except ValueError as exc:
            raise InvalidRequest("bad_idempotency_key", str(exc)) from None
        known = self._name_of(request_id, owner) if request_id is not None else None
        request_id = request_id or new_id()
        name = known or upload.name
        request = ImageRequest(
            id=request_id, name=name, bucket=self.settings.image_input_bucket, key=input_key(owner, request_id, name),
            top=top, callback=callback,
        )
        if known is None:
            self.s3.put_object(
                Bucket=request.bucket,
                Key=request.key,
                Body=upload.data,
                ContentType=upload.info.mime,
                Metadata={"request-id": request.id},
            )
        elif (answered := self.results.find(request.id, name)) is not None:
            return Submission(request, answered)
        # Should both sends of a retried request go through, the second delivery finds the answer
        # stored and is not answered again.
        if expect_answer:  # registered before the send, so that no reply can come before its waiter
            request = replace(request, reply_to=self.replies.expect(request.id))
        if known is None:  # a small image rides in the message too: the worker skips its GET
            request = request.carrying(upload.data)
        try:
            self.requests.send(request.to_message())
        except BaseException:
            self.replies.forget(request.id)
            raise
        return Submission(request)

    def check_callback(self, url: str | None) -> None:
        """InvalidRequest unless this stack may POST answers to ``url`` (None: no callback asked for):
        ``callbacks_disabled`` without a webhook secret, ``bad_callback`` for a URL the callback policy
        refuses as written (it is checked again after DNS when the answer is sent)."""
        if url is None:
            return
        if not self.settings.callbacks_enabled:
            raise InvalidRequest(
                "callbacks_disabled", "this stack has no webhook secret, so it sends no callbacks "
                "(set IRAAS_WEBHOOK_SECRET for iraas up; a deployment has one)",
            )
        try:
            self.settings.callback_policy.check_url(url)
        except RefusedDestination as exc:
            raise InvalidRequest("bad_callback", f"callback: {exc}") from None

    def wait(self, submission: Submission, timeout_s: float) -> Submission:
        """The submission with its answer, pushed by the worker within ``timeout_s``; else with
        whatever S3 has by then (None: still queued)."""
        request = submission.request
        result = self.replies.wait(request.id, timeout_s)
        return Submission(request, result if result is not None else self.results.find(request.id, request.name))

    def find(self, owner: str, image_id: str) -> ImageResult | None:
        """The answer to ``owner``'s request ``image_id``, None while it is queued; NotFound for an id
        that is unknown or another caller's (both look the same, so that ids cannot be probed)."""
        name = self._name_of(image_id, owner) if is_valid_id(image_id) else None
        if name is None:
            raise NotFound("not_found", f"no image with id {image_id!r}")
        return self.results.find(image_id, name)

    def release_waiters(self) -> None:
        """Wake every request still waiting for its answer (an orderly stop); they answer as queued."""
        self.replies.release_all()

    def stats(self) -> dict[str, Any]:
        """Queue depths and the fleet's size, as ``GET /v1/stats`` shows them."""
        stats: dict[str, Any] = {"queue": asdict(queue_depth(self.sqs, self.settings.request_queue_url))}
        if self.settings.dead_letter_queue_url:
            stats["dead_letter"] = asdict(queue_depth(self.sqs, self.settings.dead_letter_queue_url))
        stats["workers"] = asdict(S3StatusStore(self.s3, self.settings.image_output_bucket).fleet())
        if self.settings.callbacks_enabled and self.settings.callback_queue_url:
            # Answers still to be POSTed (first tries and retries), and those given up on.
            callbacks = {"pending": queue_depth(self.sqs, self.settings.callback_queue_url).queued}
            if self.settings.callback_dead_letter_queue_url:
                callbacks["failed"] = queue_depth(self.sqs, self.settings.callback_dead_letter_queue_url).visible
            stats["callbacks"] = callbacks
        return stats

    def metrics(self, now: float | None = None) -> dict[str, Any]:
        """The fleet's recent throughput and latency, as ``GET /v1/metrics`` and ``iraas status``
        show them (``recent_metrics``: one LIST and a GET per recent worker)."""
        return recent_metrics(self.s3, self.settings.image_output_bucket, time.time() if now is None else now)

    def _name_of(self, request_id: str, owner: str) -> str | None:
        """The file name of a request ``owner`` made (its input is stored), None for an unknown id and
        for another caller's."""
        listing = self.s3.list_objects_v2(
            Bucket=self.settings.image_input_bucket, Prefix=input_prefix(owner, request_id), MaxKeys=1
        )
        for obj in listing.get("Contents", []):
            return name_from_input_key(owner, request_id, obj["Key"])
        return None
