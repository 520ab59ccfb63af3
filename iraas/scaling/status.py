"""The app tier's size as last published by whoever runs the workers (the scaler, `iraas up`).

Kept as one small object in the output bucket, so any web tier instance (Lambda, gunicorn on
OpenStack, chalice local) can report it without talking to the fleet itself.
"""

from __future__ import annotations

import json
import time
from dataclasses import asdict, dataclass, field
from typing import Any

from iraas import aws

FLEET_STATUS_KEY = "status/fleet.json"  # in the output bucket


@dataclass(frozen=True)
class FleetStatus:
    running: int
    desired: int
    fleet: str  # "local", "ec2", or "none" when nobody has published yet
    updated_at: float = field(default_factory=time.time)


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
    return FleetStatus(**json.loads(body))
