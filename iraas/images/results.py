"""The result store: the one place that reads and writes result objects in the output bucket.

By id (``results/<id>.json``: what ``GET /v1/images/{id}`` and a waiting request read) and by file
name (``names/<name>/<id>.json``). The first answer to a request is final: it is written with
``If-None-Match: *``, so a second delivery of the same request cannot overwrite it.
"""

from __future__ import annotations

import json
from typing import Any

from botocore.exceptions import ClientError

from iraas import aws
from iraas.images.jobs import ImageResult, poison_key, result_by_name_key, result_key

_JSON = "application/json"


class ResultStore:
    def __init__(self, s3: Any, bucket: str) -> None:
        self.s3, self.bucket = s3, bucket

    def find(self, request_id: str) -> ImageResult | None:
        """The stored answer, or None while there is none."""
        try:
            obj = self.s3.get_object(Bucket=self.bucket, Key=result_key(request_id))
        except Exception as exc:
            if aws.is_not_found(exc):
                return None
            raise
        return ImageResult.from_json(obj["Body"].read())

    def exists(self, request_id: str) -> bool:
        """Whether the request has an answer (one HEAD, no body)."""
        try:
            self.s3.head_object(Bucket=self.bucket, Key=result_key(request_id))
        except Exception as exc:
            if aws.is_not_found(exc):
                return False
            raise
        return True

    def put_first(self, result: ImageResult, body: str) -> bool:
        """Store ``body`` (``result`` as JSON) by id unless an answer exists; False if one did.

        A 409 ConditionalRequestConflict (a concurrent write) is raised: the queue retries it.
        """
        try:
            self.s3.put_object(
                Bucket=self.bucket, Key=result_key(result.id), Body=body.encode(), ContentType=_JSON, IfNoneMatch="*"
            )
        except ClientError as exc:
            if aws.error_code(exc) == "PreconditionFailed":
                return False
            raise
        return True

    def put_by_name(self, result: ImageResult, body: str) -> None:
        self.s3.put_object(
            Bucket=self.bucket, Key=result_by_name_key(result.id, result.name), Body=body.encode(), ContentType=_JSON
        )

    def copy_by_name(self, request_id: str, name: str) -> None:
        """Make the stored answer findable by name (a copy, so both keys always agree)."""
        self.s3.copy_object(
            Bucket=self.bucket,
            Key=result_by_name_key(request_id, name),
            CopySource={"Bucket": self.bucket, "Key": result_key(request_id)},
        )

    def record_unreadable(self, message_id: str, code: str, message: str, body: str) -> None:
        """Why a queue message that is not a request at all was given up (``errors/<id>.json``)."""
        record = {"message_id": message_id, "error": {"code": code, "message": message}, "body": body[:4096]}
        self.s3.put_object(
            Bucket=self.bucket, Key=poison_key(message_id), Body=json.dumps(record).encode(), ContentType=_JSON
        )
