"""The EC2 fleet: workers are instances launched from the stack's launch template.

Every instance it launches carries the fleet tag; it lists and terminates only instances with
that tag, so nothing else in the account is ever touched. Terminating an instance shuts it down
cleanly: systemd sends the worker SIGTERM and it finishes its batch first (TimeoutStopSec=90).
"""

from __future__ import annotations

import logging
import threading
from typing import Any

from iraas import aws
from iraas.scaling.fleet import Member
from iraas.scaling.scaler import Scaler
from iraas.scaling.settings import ScalingSettings

log = logging.getLogger("iraas.scaler")

FLEET_TAG = "iraas:fleet"
LIVE_STATES = ["pending", "running"]


class Ec2Fleet:
    def __init__(self, ec2: Any, launch_template_id: str, fleet_name: str) -> None:
        self.ec2 = ec2
        self.launch_template_id = launch_template_id
        self.name = fleet_name

    def _filters(self, states: list[str]) -> list[dict]:
        return [
            {"Name": f"tag:{FLEET_TAG}", "Values": [self.name]},
            {"Name": "instance-state-name", "Values": states},
        ]

    def _instances(self, states: list[str], ids: list[str] | None = None) -> list[dict]:
        kwargs: dict[str, Any] = {"Filters": self._filters(states)}
        if ids:
            kwargs["InstanceIds"] = ids
        found = []
        for page in self.ec2.get_paginator("describe_instances").paginate(**kwargs):
            for reservation in page["Reservations"]:
                found.extend(reservation["Instances"])
        return found

    def members(self) -> list[Member]:
        # shutting-down: asked to stop, still finishing its batch.
        return [
            Member(i["InstanceId"], stopping=i["State"]["Name"] == "shutting-down")
            for i in self._instances(LIVE_STATES + ["shutting-down"])
        ]

    def launch(self, count: int) -> list[str]:
        if count <= 0:
            return []
        tags = [{"Key": FLEET_TAG, "Value": self.name}, {"Key": "Name", "Value": f"{self.name}-worker"}]
        response = self.ec2.run_instances(
            LaunchTemplate={"LaunchTemplateId": self.launch_template_id, "Version": "$Latest"},
            # All or nothing: on a capacity error the call fails and the next tick asks again.
            MinCount=count,
            MaxCount=count,
            TagSpecifications=[{"ResourceType": "instance", "Tags": tags}],
        )
        return [i["InstanceId"] for i in response["Instances"]]

    def stop(self, ids: list[str]) -> None:
        # Re-check the tag at the moment of terminating: never trust ids alone.
        ours = [i["InstanceId"] for i in self._instances(LIVE_STATES, ids)] if ids else []
        if ours:
            self.ec2.terminate_instances(InstanceIds=ours)


def scale_ec2_fleet(settings: ScalingSettings, seconds: float) -> dict:
    """Run the scaler on the EC2 fleet for ``seconds`` (one scheduled invocation)."""
    if not settings.launch_template_id:
        # A stack deployed without WorkerAmiId has no fleet: say so once a minute, don't fail.
        reason = "IRAAS_LAUNCH_TEMPLATE_ID is empty: the stack has no worker fleet (set WorkerAmiId)"
        log.warning(reason)
        return {"ticks": 0, "desired": None, "skipped": reason}
    fleet = Ec2Fleet(aws.client(settings, "ec2"), settings.launch_template_id, settings.fleet_name)
    scaler = Scaler(settings, fleet, settings.config)
    scaler.run(threading.Event(), seconds=max(0.0, seconds))
    last = scaler.last
    return {"ticks": scaler.ticks, "desired": last.desired if last else None}
