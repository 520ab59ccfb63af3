"""Workers report busy or idle; the scaler reads it to stop only idle workers.

One small object per worker in the output bucket (``status/workers/<id>.json``), so an EC2
instance and a local process report the same way, and the scaler in Lambda can read both.
"""

from __future__ import annotations

import json
import threading
import time
from dataclasses import asdict, dataclass
from typing import Any, Callable

from iraas.jobs import HEARTBEAT_PREFIX, heartbeat_key


@dataclass(frozen=True)
class Heartbeat:
    worker_id: str
    busy: bool
    idle_since: float | None  # wall-clock time the worker last finished a batch (or started)
    updated_at: float


def publish(s3: Any, bucket: str, beat: Heartbeat) -> None:
    s3.put_object(
        Bucket=bucket, Key=heartbeat_key(beat.worker_id), Body=json.dumps(asdict(beat)).encode(),
        ContentType="application/json",
    )


def remove(s3: Any, bucket: str, worker_id: str) -> None:
    s3.delete_object(Bucket=bucket, Key=heartbeat_key(worker_id))


def read_all(s3: Any, bucket: str) -> dict[str, Heartbeat]:
    beats: dict[str, Heartbeat] = {}
    for page in s3.get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=HEARTBEAT_PREFIX):
        for obj in page.get("Contents", []):
            try:
                body = s3.get_object(Bucket=bucket, Key=obj["Key"])["Body"].read()
                beat = Heartbeat(**json.loads(body))
            except (s3.exceptions.NoSuchKey, ValueError, TypeError):
                continue  # gone meanwhile, or not ours
            beats[beat.worker_id] = beat
    return beats


class HeartbeatPublisher:
    """A daemon thread that publishes ``state()`` every ``interval_s`` seconds."""

    def __init__(
        self, s3: Any, bucket: str, worker_id: str, state: Callable[[], tuple[bool, float]], interval_s: float
    ) -> None:
        self._s3, self._bucket, self._id, self._state = s3, bucket, worker_id, state
        self._interval = interval_s
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._loop, name="heartbeat", daemon=True)

    def start(self) -> None:
        self.beat()
        self._thread.start()

    def beat(self) -> None:
        busy, idle_since = self._state()
        publish(self._s3, self._bucket, Heartbeat(self._id, busy, None if busy else idle_since, time.time()))

    def stop(self) -> None:
        self._stop.set()
        try:
            remove(self._s3, self._bucket, self._id)
        except Exception:  # noqa: BLE001 - a stale heartbeat only delays nothing: the fleet reaps
            pass

    def _loop(self) -> None:
        while not self._stop.wait(self._interval):
            try:
                self.beat()
            except Exception:  # noqa: BLE001 - keep beating; one failed PUT is not fatal
                pass
