"""The web tier's use cases: accept an image, find or wait for its result, report stats.

Waiting polls the result object in S3 rather than consuming the response queue: it works the same
in one threaded process (chalice local, gunicorn) and across many short-lived Lambda instances,
and S3 reads are strongly consistent, so a result is seen as soon as it is written.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import asdict
from typing import Any

from iraas import aws
from iraas.config import Settings
from iraas.images.jobs import ImageRequest, ImageResult, input_key, input_prefix, new_id
from iraas.images.results import ResultStore
from iraas.images.uploads import Upload
from iraas.queues import queue_depth
from iraas.scaling import status

# Polling schedule while waiting: quick at first (a warm worker answers in ~100 ms), then
# backing off so a long wait costs a few dozen GETs, not hundreds.
_FIRST_POLL_S = 0.05
_MAX_POLL_S = 0.5


class ImageService:
    def __init__(self, settings: Settings, s3: Any = None, sqs: Any = None) -> None:
        self.settings = settings
        self.s3 = s3 or aws.client(settings, "s3")
        self.sqs = sqs or aws.client(settings, "sqs")
        self.results = ResultStore(self.s3, settings.image_output_bucket)

    def submit(self, upload: Upload, request_id: str | None = None) -> ImageRequest:
        """Store the image, then queue a request that points at it.

        With a ``request_id`` derived from a client's idempotency key, a repeated submission is
        recognised and not queued a second time.
        """
        repeated = request_id is not None and self.is_known(request_id)
        request_id = request_id or new_id()
        request = ImageRequest(
            id=request_id,
            name=upload.name,
            bucket=self.settings.image_input_bucket,
            key=input_key(request_id, upload.name),
        )
        if repeated:
            return request
        self.s3.put_object(
            Bucket=request.bucket,
            Key=request.key,
            Body=upload.data,
            ContentType=upload.info.mime,
            Metadata={"request-id": request.id},
        )
        self.sqs.send_message(QueueUrl=self.settings.request_queue_url, MessageBody=request.to_message())
        return request

    def find_result(self, request_id: str) -> ImageResult | None:
        return self.results.find(request_id)

    def is_known(self, request_id: str) -> bool:
        """Whether a request with this id was ever accepted (its input is stored)."""
        listing = self.s3.list_objects_v2(
            Bucket=self.settings.image_input_bucket, Prefix=input_prefix(request_id), MaxKeys=1
        )
        return listing.get("KeyCount", 0) > 0

    def wait_for_result(
        self,
        request_id: str,
        timeout_s: float,
        clock: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], None] = time.sleep,
    ) -> ImageResult | None:
        """The result, polled until it appears or ``timeout_s`` passes (then None)."""
        deadline = clock() + max(0.0, timeout_s)
        pause = _FIRST_POLL_S
        while True:
            result = self.find_result(request_id)
            if result is not None:
                return result
            left = deadline - clock()
            if left <= 0:
                return None
            sleep(min(pause, left))
            pause = min(pause * 1.5, _MAX_POLL_S)

    def stats(self) -> dict[str, Any]:
        """Queue depths and the fleet's size, as ``GET /v1/stats`` shows them."""
        stats: dict[str, Any] = {"queue": asdict(queue_depth(self.sqs, self.settings.request_queue_url))}
        if self.settings.dead_letter_queue_url:
            stats["dead_letter"] = asdict(queue_depth(self.sqs, self.settings.dead_letter_queue_url))
        stats["workers"] = asdict(status.read(self.s3, self.settings.image_output_bucket))
        return stats
