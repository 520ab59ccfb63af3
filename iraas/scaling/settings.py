"""The scaler's settings: the queue it reads, where it publishes, the policy's knobs and the EC2 fleet.

Its own part, so that the scaler needs nothing of the image service but two resource names: the
request queue whose depth it follows and the output bucket where workers beat and the fleet's
size is published.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass, field

from iraas.config import AwsSettings, integer, load_aws, number, required_resource
from iraas.errors import ConfigError
from iraas.scaling.policy import ScalingConfig


@dataclass(frozen=True)
class ScalingSettings(AwsSettings):
    request_queue_url: str  # whose depth decides the fleet's size
    status_bucket: str  # the image output bucket: workers' heartbeats and the fleet's published size
    config: ScalingConfig = field(default_factory=ScalingConfig)
    # The EC2 fleet (set in AWS by template.yaml; unused by the embedded stack).
    fleet_name: str = "iraas"
    launch_template_id: str | None = None
    scaler_invocation_s: float = 55.0  # how long one scheduled invocation keeps scaling


def load_scaling_config(env: Mapping[str, str]) -> ScalingConfig:
    """The policy's knobs: ``IRAAS_MAX_WORKERS``, ``IRAAS_MIN_WORKERS``, ... (checked)."""
    try:
        return ScalingConfig(
            max_workers=integer(env, "IRAAS_MAX_WORKERS", ScalingConfig.max_workers, 0, 1000),
            min_workers=integer(env, "IRAAS_MIN_WORKERS", ScalingConfig.min_workers, 0, 1000),
            requests_per_worker=integer(
                env, "IRAAS_REQUESTS_PER_WORKER", ScalingConfig.requests_per_worker, 1, 10_000
            ),
            tick_s=number(env, "IRAAS_SCALER_TICK_S", ScalingConfig.tick_s, 0.1, 60),
            scale_in_after_s=number(env, "IRAAS_SCALE_IN_AFTER_S", ScalingConfig.scale_in_after_s, 0, 3600),
            idle_s=number(env, "IRAAS_WORKER_IDLE_S", ScalingConfig.idle_s, 0, 3600),
        )
    except ValueError as exc:
        if isinstance(exc, ConfigError):
            raise
        raise ConfigError(f"IRAAS_MIN_WORKERS/IRAAS_MAX_WORKERS: {exc}") from None


def load_scaling_settings(env: Mapping[str, str] | None = None) -> ScalingSettings:
    """Read and check the scaler's settings; raise ConfigError naming what is wrong."""
    env = dict(os.environ if env is None else env)
    where, resources = load_aws(env)
    return ScalingSettings(
        region=where.region,
        endpoint_url=where.endpoint_url,
        home=where.home,
        request_queue_url=required_resource(env, resources, "RequestQueue", where.home),
        status_bucket=required_resource(env, resources, "ImageOutputBucket", where.home),
        config=load_scaling_config(env),
        fleet_name=env.get("IRAAS_FLEET_NAME") or "iraas",
        launch_template_id=env.get("IRAAS_LAUNCH_TEMPLATE_ID") or None,
        scaler_invocation_s=number(env, "IRAAS_SCALER_INVOCATION_S", ScalingSettings.scaler_invocation_s, 0, 900),
    )
