"""The web tier's use cases: accept an image, wait for its result or find it, report stats and metrics.

Waiting is pushed, not polled: the request names this process's reply queue and the worker
answers there (``iraas.images.replies``). S3 is the durable answer: ``GET /v1/images/{id}`` reads
it, and a waiter whose reply does not come reads it once at its deadline.
"""

from __future__ import annotations

import time
from dataclasses import asdict, replace
from typing import Any

from iraas import aws, drain
from iraas.config import Settings
from iraas.errors import ApiError
from iraas.images.jobs import ImageRequest, ImageResult, input_key, input_prefix, name_from_input_key, new_id
from iraas.images.metrics import recent_metrics
from iraas.images.replies import Replies, replies_for_this_process
from iraas.images.results import ResultStore
from iraas.images.uploads import Upload
from iraas.queues import BatchSender, queue_depth
from iraas.scaling import status

# How long a send waits for concurrent requests' sends to share its SendMessageBatch call.
SEND_LINGER_S = 0.005


class ImageService:
    def __init__(self, settings: Settings, s3: Any = None, sqs: Any = None, replies: Replies | None = None) -> None:
        self.settings = settings
        self.s3 = s3 or aws.client(settings, "s3")
        self.sqs = sqs or aws.client(settings, "sqs")
        self.results = ResultStore(self.s3, settings.image_output_bucket)
        self.replies = replies or replies_for_this_process(self.sqs, settings.reply_queue_prefix)
        drain.on_release(self.replies.release_all)  # an orderly stop answers the waiters still held
        # One request at a time on Lambda: nothing to gather there.
        self.requests = BatchSender(self.sqs, settings.request_queue_url, 0.0 if aws.on_lambda() else SEND_LINGER_S)

    def submit(self, upload: Upload, owner: str, request_id: str | None = None, wait: bool = False) -> ImageRequest:
        """Store the image under its caller (``owner``, see ``iraas.auth.caller_identity``), then queue
        a request that points at it (naming the reply queue if the caller will ``wait_for_result``).

        With a ``request_id`` derived from a client's idempotency key, a repeated submission is
        recognised and not queued a second time.
        """
        if drain.stopping():
            raise ApiError(503, "stopping", "this web server is stopping; try again", retry_after_s=drain.RETRY_AFTER_S)
        known = self.name_of(request_id, owner) if request_id is not None else None
        request_id = request_id or new_id()
        name = known or upload.name
        request = ImageRequest(
            id=request_id, name=name, bucket=self.settings.image_input_bucket, key=input_key(owner, request_id, name)
        )
        if known is None:
            self.s3.put_object(
                Bucket=request.bucket,
                Key=request.key,
                Body=upload.data,
                ContentType=upload.info.mime,
                Metadata={"request-id": request.id},
            )
        elif self.results.find(request.id, name) is not None:
            return request  # answered already
        # else the first attempt's send may have failed (it got a 503): queue it again. Should both
        # sends have gone through, the second delivery finds the answer stored and is not answered again.
        if wait:  # registered before the send, so that no reply can come before its waiter
            request = replace(request, reply_to=self.replies.expect(request.id))
        try:
            self.requests.send(request.to_message())
        except BaseException:
            self.replies.forget(request.id)
            raise
        return request

    def wait_for_result(self, request: ImageRequest, timeout_s: float) -> ImageResult | None:
        """The result, pushed by the worker within ``timeout_s``; else whatever S3 has by then."""
        result = self.replies.wait(request.id, timeout_s)
        return result if result is not None else self.results.find(request.id, request.name)

    def name_of(self, request_id: str, owner: str) -> str | None:
        """The file name of a request ``owner`` made (its input is stored), None for an unknown id and
        for another caller's: both look the same, so that ids cannot be probed."""
        listing = self.s3.list_objects_v2(
            Bucket=self.settings.image_input_bucket, Prefix=input_prefix(owner, request_id), MaxKeys=1
        )
        for obj in listing.get("Contents", []):
            return name_from_input_key(owner, request_id, obj["Key"])
        return None

    def stats(self) -> dict[str, Any]:
        """Queue depths and the fleet's size, as ``GET /v1/stats`` shows them."""
        stats: dict[str, Any] = {"queue": asdict(queue_depth(self.sqs, self.settings.request_queue_url))}
        if self.settings.dead_letter_queue_url:
            stats["dead_letter"] = asdict(queue_depth(self.sqs, self.settings.dead_letter_queue_url))
        stats["workers"] = asdict(status.read(self.s3, self.settings.image_output_bucket))
        return stats

    def metrics(self, now: float | None = None) -> dict[str, Any]:
        """The fleet's recent throughput and latency, as ``GET /v1/metrics`` and ``iraas status``
        show them (``recent_metrics``: one LIST and a GET per recent worker)."""
        return recent_metrics(self.s3, self.settings.image_output_bucket, time.time() if now is None else now)
