"""The result store: the one place that reads and writes result objects in the output bucket.

One object per answer, ``results/<file name>/<id>.json``: found by name (list ``results/<name>/``)
and by id (the request's input key names the file). The first answer to a request is final: it
is written with ``If-None-Match: *``, so a second delivery of the same request cannot overwrite it.
"""

from __future__ import annotations

import json
from typing import Any

from botocore.exceptions import ClientError

from iraas import aws
from iraas.images.jobs import ImageResult, poison_key, result_key

_JSON = "application/json"


class ResultStore:
    def __init__(self, s3: Any, bucket: str) -> None:
        self.s3, self.bucket = s3, bucket

    def find(self, request_id: str, name: str) -> ImageResult | None:
        """The stored answer, or None while there is none."""
        try:
            obj = self.s3.get_object(Bucket=self.bucket, Key=result_key(request_id, name))
        except Exception as exc:
            if aws.is_not_found(exc):
                return None
            raise
        return ImageResult.from_json(obj["Body"].read())

    def put_first(self, result: ImageResult, body: str) -> bool:
        """Store ``body`` (``result`` as JSON) unless the request has an answer; False if it had.

        A 409 ConditionalRequestConflict (a concurrent write) is raised: the queue retries it.
        """
        try:
            self.s3.put_object(
                Bucket=self.bucket,
                Key=result_key(result.id, result.name),
                Body=body.encode(),
                ContentType=_JSON,
                IfNoneMatch="*",
            )
        except ClientError as exc:
            if aws.error_code(exc) == "PreconditionFailed":
                return False
            raise
        return True

    def record_unreadable(self, message_id: str, code: str, message: str, body: str) -> None:
        """Why a queue message that is not a request at all was given up (``errors/<id>.json``)."""
        record = {"message_id": message_id, "error": {"code": code, "message": message}, "body": body[:4096]}
        self.s3.put_object(
            Bucket=self.bucket, Key=poison_key(message_id), Body=json.dumps(record).encode(), ContentType=_JSON
        )
