"""What the app tier publishes about itself, and the store that keeps it: each worker's heartbeat
(busy or idle; the scaler stops only idle workers) and the fleet's size as the scaler last decided it.

Kept apart from the fleet itself, so that an EC2 instance and a local process report the same way,
the scaler in Lambda reads both, and any web tier instance (Lambda, gunicorn on OpenStack, chalice
local) reports the fleet's size without talking to it. :class:`S3StatusStore` keeps them as small
objects in the output bucket; :class:`InMemoryStatusStore` in dicts (for unit tests of the scaler).
"""

from __future__ import annotations

import json
import threading
import time
from abc import ABC, abstractmethod
from collections import Counter
from dataclasses import asdict, dataclass, field, fields, replace
from typing import Any

from iraas import aws
from iraas.names import safe_segment

HEARTBEAT_PREFIX = "status/workers/"  # in the output bucket: one object per worker
FLEET_STATUS_KEY = "status/fleet.json"  # in the output bucket


@dataclass(frozen=True)
class Heartbeat:
    worker_id: str
    busy: bool
    idle_since: float | None  # wall-clock time the worker last finished a batch (or started)
    updated_at: float


@dataclass(frozen=True)
class FleetStatus:
    running: int
    desired: int
    fleet: str  # "local", "ec2", or "none" when nobody has published yet
    updated_at: float = field(default_factory=time.time)
    max: int = 0  # the most workers the scaler will run (0: unknown, nobody has published yet)
    # Where ``max`` comes from: "setting" (IRAAS_MAX_WORKERS, or its default of 19), "cpu" (the
    # local fleet, capped to the machine's cores), "fixed" (`iraas up --workers N`).
    capped_by: str = ""

    def same_as(self, other: FleetStatus | None) -> bool:
        """Whether ``other`` says the same, whenever it was said (``updated_at`` aside)."""
        return other is not None and replace(self, updated_at=0.0) == replace(other, updated_at=0.0)


NOBODY_PUBLISHED = FleetStatus(running=0, desired=0, fleet="none", updated_at=0.0)


def heartbeat_key(worker_id: str) -> str:
    """Where a worker reports whether it is busy (an EC2 instance id, or ``local-3``)."""
    return f"{HEARTBEAT_PREFIX}{safe_segment(worker_id)}.json"


class StatusStore(ABC):
    @abstractmethod
    def beat(self, beat: Heartbeat) -> None:
        """Publish a worker's heartbeat (replacing its last one)."""

    @abstractmethod
    def remove(self, worker_id: str) -> None:
        """A worker that stops takes its heartbeat with it (one left behind goes stale)."""

    @abstractmethod
    def heartbeats(self) -> dict[str, Heartbeat]:
        """Every worker's last heartbeat, by worker id."""

    @abstractmethod
    def publish(self, status: FleetStatus) -> None:
        """Publish the fleet's size (replacing the last one)."""

    @abstractmethod
    def fleet(self) -> FleetStatus:
        """The fleet's size as last published; :data:`NOBODY_PUBLISHED` before anyone did."""


class S3StatusStore(StatusStore):
    """Heartbeats as ``status/workers/<id>.json`` and the fleet as ``status/fleet.json`` in the output
    bucket: reading the heartbeats is a LIST and a GET each, publishing one PUT."""

    def __init__(self, s3: Any, bucket: str) -> None:
        self.s3, self.bucket = s3, bucket

    def beat(self, beat: Heartbeat) -> None:
        self._put(heartbeat_key(beat.worker_id), asdict(beat))

    def remove(self, worker_id: str) -> None:
        self.s3.delete_object(Bucket=self.bucket, Key=heartbeat_key(worker_id))

    def heartbeats(self) -> dict[str, Heartbeat]:
        beats: dict[str, Heartbeat] = {}
        for page in self.s3.get_paginator("list_objects_v2").paginate(Bucket=self.bucket, Prefix=HEARTBEAT_PREFIX):
            for obj in page.get("Contents", []):
                try:
                    body = self.s3.get_object(Bucket=self.bucket, Key=obj["Key"])["Body"].read()
                    beat = Heartbeat(**json.loads(body))
                except (ValueError, TypeError):
                    continue  # not ours
                except Exception as exc:
                    if aws.is_not_found(exc):
                        continue  # gone meanwhile: the worker stopped
                    raise
                beats[beat.worker_id] = beat
        return beats

    def publish(self, status: FleetStatus) -> None:
        self._put(FLEET_STATUS_KEY, asdict(status))

    def fleet(self) -> FleetStatus:
        try:
            body = self.s3.get_object(Bucket=self.bucket, Key=FLEET_STATUS_KEY)["Body"].read()
        except Exception as exc:
            if aws.is_not_found(exc):
                return NOBODY_PUBLISHED
            raise
        known = {f.name for f in fields(FleetStatus)}
        # Fields this version does not know (a newer publisher) are left out rather than failing.
        return FleetStatus(**{k: v for k, v in json.loads(body).items() if k in known})

    def _put(self, key: str, data: dict[str, Any]) -> None:
        self.s3.put_object(Bucket=self.bucket, Key=key, Body=json.dumps(data).encode(), ContentType="application/json")


class InMemoryStatusStore(StatusStore):
    """The same contract in dicts; ``calls`` counts what each method was asked, as a test reads the
    cost of a tick (each call of :class:`S3StatusStore` is one or more S3 requests)."""

    def __init__(self) -> None:
        self._beats: dict[str, Heartbeat] = {}
        self._fleet = NOBODY_PUBLISHED
        self._lock = threading.Lock()
        self.calls: Counter[str] = Counter()

    def beat(self, beat: Heartbeat) -> None:
        with self._lock:
            self.calls["beat"] += 1
            self._beats[beat.worker_id] = beat

    def remove(self, worker_id: str) -> None:
        with self._lock:
            self.calls["remove"] += 1
            self._beats.pop(worker_id, None)

    def heartbeats(self) -> dict[str, Heartbeat]:
        with self._lock:
            self.calls["heartbeats"] += 1
            return dict(self._beats)

    def publish(self, status: FleetStatus) -> None:
        with self._lock:
            self.calls["publish"] += 1
            self._fleet = status

    def fleet(self) -> FleetStatus:
        with self._lock:
            self.calls["fleet"] += 1
            return self._fleet
