"""The callback queue's message: one answer to deliver, where, and how many tries it has had."""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, replace

SCHEMA_VERSION = 1
MAX_URL_LENGTH = 2048


class MalformedJob(ValueError):
    """A callback queue message that is not a job of this schema."""


@dataclass(frozen=True)
class CallbackJob:
    url: str
    delivery_id: str  # the request id: one per answer, whatever the attempts and repeats
    body: str  # the answer's JSON, exactly as signed and sent
    attempt: int = 1  # this try's number, from 1

    def to_message(self) -> str:
        return json.dumps({"v": SCHEMA_VERSION, **asdict(self)}, separators=(",", ":"))

    def next_attempt(self) -> CallbackJob:
        return replace(self, attempt=self.attempt + 1)

    @classmethod
    def from_message(cls, body: str) -> CallbackJob:
        try:
            data = json.loads(body)
        except (ValueError, RecursionError) as exc:
            raise MalformedJob(f"callback message is not JSON: {exc}") from None
        if not isinstance(data, dict) or data.get("v") != SCHEMA_VERSION:
            raise MalformedJob(f"message is not an IRaaS callback job of schema v{SCHEMA_VERSION}")
        fields = (data.get("url"), data.get("delivery_id"), data.get("body"))
        attempt = data.get("attempt", 1)
        if not all(isinstance(f, str) and f for f in fields) or not isinstance(attempt, int) or attempt < 1:
            raise MalformedJob("callback job lacks a valid url, delivery_id, body or attempt")
        if len(data["url"]) > MAX_URL_LENGTH:
            raise MalformedJob(f"callback url is over {MAX_URL_LENGTH} characters")
        return cls(url=data["url"], delivery_id=data["delivery_id"], body=data["body"], attempt=attempt)
