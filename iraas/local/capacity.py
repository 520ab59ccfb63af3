"""How large the embedded stack's fleet gets, and how often its scaler looks.

In AWS each worker is an instance of its own, so the policy's default of up to 19 workers buys 19
machines. Locally every worker is a process on this machine: past one per core they only share
the same cores (and each holds its own copy of the model), so by default the local fleet stops at
the cores this process may run on. An explicit ``IRAAS_MAX_WORKERS`` is honoured as given, and
``iraas up --workers N`` fixes the fleet at N.

A local worker is ready in a fraction of a second (forked from the zygote), so the scaler is
worth running fast while a burst is on; an idle tick costs one SQS call against the embedded
endpoint (see :class:`iraas.scaling.scaler.Scaler`).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from dataclasses import dataclass

from iraas.scaling.policy import ScalingConfig

FAST_TICK_S = 0.25  # while requests are queued or workers are fewer than desired
IDLE_TICK_S = 0.5  # the local idle tick unless IRAAS_SCALER_TICK_S says otherwise


@dataclass(frozen=True)
class LocalScaling:
    config: ScalingConfig
    capped_by: str  # where config.max_workers comes from: "cpu", "setting" or "fixed"
    fast_tick_s: float | None  # None: tick every config.tick_s, whatever the queue


def local_scaling(config: ScalingConfig, fixed: int | None, env: Mapping[str, str], cores: int) -> LocalScaling:
    """The scaling of the local fleet, from the settings' ``config`` (read from ``env``).

    ``fixed`` (``--workers N``) wins; then an explicit ``IRAAS_MAX_WORKERS``; otherwise the fleet is
    capped at ``cores`` (never below ``IRAAS_MIN_WORKERS``).
    """
    if fixed is not None:
        return LocalScaling(
            dataclasses.replace(config, min_workers=fixed, max_workers=fixed), "fixed", fast_tick_s=None
        )
    if not env.get("IRAAS_SCALER_TICK_S", "").strip():
        config = dataclasses.replace(config, tick_s=IDLE_TICK_S)
    if env.get("IRAAS_MAX_WORKERS", "").strip():
        return LocalScaling(config, "setting", FAST_TICK_S)
    cap = max(config.min_workers, min(config.max_workers, cores))
    capped_by = "cpu" if cap < config.max_workers else "setting"
    return LocalScaling(dataclasses.replace(config, max_workers=cap), capped_by, FAST_TICK_S)
