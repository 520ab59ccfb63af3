"""Workers report busy or idle; the scaler reads it to stop only idle workers.

One small object per worker in the output bucket (``status/workers/<id>.json``), so an EC2
instance and a local process report the same way, and the scaler in Lambda can read both.
"""

from __future__ import annotations

import contextlib
import json
import threading
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass
from typing import Any

from iraas import aws
from iraas.names import safe_segment

HEARTBEAT_PREFIX = "status/workers/"  # in the output bucket



@dataclass(frozen=True)
class Heartbeat:
    worker_id: str
    busy: bool
    idle_since: float | None  # wall-clock time the worker last finished a batch (or started)
    updated_at: float


def heartbeat_key(worker_id: str) -> str:
    """Where a worker reports whether it is busy (an EC2 instance id, or ``local-3``)."""
    return f"{HEARTBEAT_PREFIX}{safe_segment(worker_id)}.json"


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
            except (ValueError, TypeError):
                continue  # not ours
            except Exception as exc:
                if aws.is_not_found(exc):
                    continue  # gone meanwhile: the worker stopped
                raise
            beats[beat.worker_id] = beat
    return beats


class HeartbeatPublisher:
    """A daemon thread that publishes ``state()`` every ``interval_s`` seconds.

    ``also`` runs on the same tick after each beat, and once more when stopping (before the
    heartbeat is removed): the worker publishes its metrics there, so they cost no thread of
    their own and no call per image.
    """

    def __init__(
        self, s3: Any, bucket: str, worker_id: str, state: Callable[[], tuple[bool, float]], interval_s: float,
        also: Callable[[], object] | None = None,
    ) -> None:
        self._s3, self._bucket, self._id, self._state = s3, bucket, worker_id, state
        self._interval = interval_s
        self._also = also
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
        if self._thread.is_alive():  # no tick may run after this last flush
            self._thread.join(timeout=self._interval + 5)
        self._run_also()  # what the last batch answered is published before the worker goes
        # A heartbeat left behind goes stale and is ignored by the scaler.
        with contextlib.suppress(Exception):
            remove(self._s3, self._bucket, self._id)

    def _loop(self) -> None:
        while not self._stop.wait(self._interval):
            with contextlib.suppress(Exception):  # keep beating; one failed PUT is not fatal
                self.beat()
            self._run_also()

    def _run_also(self) -> None:
        if self._also is not None:
            with contextlib.suppress(Exception):  # retried next tick; never stops the beat
                self._also()
