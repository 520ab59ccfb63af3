"""The result store: the one place that reads and writes the answers to image requests.

One answer per request, and the first is final: a second delivery of the same request cannot
overwrite it. :class:`ResultStore` is what the web use cases and the worker need;
:class:`S3ResultStore` keeps answers in the output bucket, :class:`InMemoryResultStore` in a dict
(for unit tests of what uses a store, and nothing else).
"""

from __future__ import annotations

import json
import threading
from abc import ABC, abstractmethod
from typing import Any

from botocore.exceptions import ClientError

from iraas import aws
from iraas.images.jobs import ImageResult, poison_key, result_key

_JSON = "application/json"


class ResultStore(ABC):
    @abstractmethod
    def find(self, request_id: str, name: str) -> ImageResult | None:
        """The stored answer to request ``request_id`` for the file ``name``, or None while there is none."""

    @abstractmethod
    def put_first(self, result: ImageResult, body: str) -> bool:
        """Store ``body`` (``result`` as JSON) unless the request has an answer; False if it had."""

    @abstractmethod
    def record_unreadable(self, message_id: str, code: str, message: str, body: str) -> None:
        """Why a queue message that is not a request at all was given up."""


class S3ResultStore(ResultStore):
    """One object per answer in the output bucket, ``results/<file name>/<id>.json``: found by name
    (list ``results/<name>/``) and by id (the request's input key names the file). The first answer
    is written with ``If-None-Match: *``. A message that is not a request: ``errors/<id>.json``."""

    def __init__(self, s3: Any, bucket: str) -> None:
        self.s3, self.bucket = s3, bucket

    def find(self, request_id: str, name: str) -> ImageResult | None:
        try:
            obj = self.s3.get_object(Bucket=self.bucket, Key=result_key(request_id, name))
        except Exception as exc:
            if aws.is_not_found(exc):
                return None
            raise
        return ImageResult.from_json(obj["Body"].read())

    def put_first(self, result: ImageResult, body: str) -> bool:
        """A 409 ConditionalRequestConflict (a concurrent write) is raised: the queue retries it."""
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
        self.s3.put_object(
            Bucket=self.bucket, Key=poison_key(message_id), Body=json.dumps(_unreadable(message_id, code, message, body)).encode(),
            ContentType=_JSON,
        )


class InMemoryResultStore(ResultStore):
    """The same contract in a dict: keyed like the bucket, first answer final, thread-safe."""

    def __init__(self) -> None:
        self.answers: dict[str, str] = {}  # result key -> JSON body
        self.unreadable: dict[str, dict[str, Any]] = {}  # message id -> the record
        self._lock = threading.Lock()

    def find(self, request_id: str, name: str) -> ImageResult | None:
        body = self.answers.get(result_key(request_id, name))
        return None if body is None else ImageResult.from_json(body)

    def put_first(self, result: ImageResult, body: str) -> bool:
        key = result_key(result.id, result.name)
        with self._lock:
            if key in self.answers:
                return False
            self.answers[key] = body
            return True

    def record_unreadable(self, message_id: str, code: str, message: str, body: str) -> None:
        self.unreadable[message_id] = _unreadable(message_id, code, message, body)


def _unreadable(message_id: str, code: str, message: str, body: str) -> dict[str, Any]:
    return {"message_id": message_id, "error": {"code": code, "message": message}, "body": body[:4096]}
