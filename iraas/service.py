"""The web tier's use cases: accept an image, find or wait for its result, report stats.

Waiting polls the result object in S3 rather than consuming the response queue: it works the same
in one threaded process (chalice local, gunicorn) and across many short-lived Lambda instances,
and S3 reads are strongly consistent, so a result is seen as soon as it is written.
"""

from __future__ import annotations

import time
from dataclasses import asdict
from typing import Any, Callable

from iraas import aws, fleet_status
from iraas.config import Settings
from iraas.jobs import ImageRequest, ImageResult, input_key, input_prefix, new_id, result_key
from iraas.uploads import Upload

# Polling schedule while waiting: quick at first (a warm worker answers in ~100 ms), then
# backing off so a long wait costs a few dozen GETs, not hundreds.
_FIRST_POLL_S = 0.05
_MAX_POLL_S = 0.5


class ImageService:
    def __init__(self, settings: Settings, s3: Any = None, sqs: Any = None) -> None:
        self.settings = settings
        self.s3 = s3 or aws.client(settings, "s3")
        self.sqs = sqs or aws.client(settings, "sqs")

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
        try:
            obj = self.s3.get_object(Bucket=self.settings.image_output_bucket, Key=result_key(request_id))
        except self.s3.exceptions.NoSuchKey:
            return None
        return ImageResult.from_json(obj["Body"].read())

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
        attrs = self._queue_counts(self.settings.request_queue_url)
        stats: dict[str, Any] = {"queue": attrs}
        if self.settings.dead_letter_queue_url:
            stats["dead_letter"] = self._queue_counts(self.settings.dead_letter_queue_url)
        fleet = fleet_status.read(self.s3, self.settings.image_output_bucket)
        stats["workers"] = asdict(fleet)
        return stats

    def _queue_counts(self, url: str) -> dict[str, int]:
        attrs = self.sqs.get_queue_attributes(
            QueueUrl=url,
            AttributeNames=["ApproximateNumberOfMessages", "ApproximateNumberOfMessagesNotVisible"],
        )["Attributes"]
        return {
            "visible": int(attrs.get("ApproximateNumberOfMessages", 0)),
            "in_flight": int(attrs.get("ApproximateNumberOfMessagesNotVisible", 0)),
        }
