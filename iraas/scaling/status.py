"""The app tier's size as last published by whoever runs the workers (the scaler, `iraas up`).

Kept as one small object in the output bucket, so any web tier instance (Lambda, gunicorn on
OpenStack, chalice local) can report it without talking to the fleet itself.
"""

from __future__ import annotations

import json
import time
from dataclasses import asdict, dataclass, field, fields, replace
from typing import Any

from iraas import aws

FLEET_STATUS_KEY = "status/fleet.json"  # in the output bucket


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


def publish(s3: Any, bucket: str, status: FleetStatus) -> None:
    s3.put_object(
        Bucket=bucket,
        Key=FLEET_STATUS_KEY,
        Body=json.dumps(asdict(status)).encode(),
        ContentType="application/json",
    )


def read(s3: Any, bucket: str) -> FleetStatus:
    try:
        body = s3.get_object(Bucket=bucket, Key=FLEET_STATUS_KEY)["Body"].read()
    except Exception as exc:
        if aws.is_not_found(exc):
            return FleetStatus(running=0, desired=0, fleet="none", updated_at=0.0)
        raise
    known = {f.name for f in fields(FleetStatus)}
    # Fields this version does not know (a newer publisher) are left out rather than failing.
    return FleetStatus(**{k: v for k, v in json.loads(body).items() if k in known})
