"""iraas/local/capacity.py: the local fleet fits the machine, capped at its cores unless
IRAAS_MAX_WORKERS or --workers says otherwise."""

from __future__ import annotations

import pytest

from iraas.local.capacity import FAST_TICK_S, IDLE_TICK_S, local_scaling
from iraas.scaling.policy import ScalingConfig
from iraas.scaling.settings import load_scaling_config


def scaling_for(env: dict[str, str], cores: int, fixed: int | None = None):
    """What `iraas up` runs with these settings on a machine with ``cores``."""
    config = load_scaling_config(env)
    return local_scaling(config, fixed, env, cores)


def test_by_default_the_local_fleet_stops_at_the_cores() -> None:
    scaling = scaling_for({}, cores=2)

    assert (scaling.config.max_workers, scaling.capped_by) == (2, "cpu")
    # The policy itself is the AWS one: one worker per 4 queued.
    assert scaling.config.requests_per_worker == ScalingConfig.requests_per_worker == 4
    assert ScalingConfig().max_workers == 19


def test_a_machine_with_more_cores_than_the_setting_keeps_the_setting() -> None:
    scaling = scaling_for({}, cores=32)

    assert (scaling.config.max_workers, scaling.capped_by) == (19, "setting")


def test_an_explicit_max_workers_is_honoured_as_given() -> None:
    scaling = scaling_for({"IRAAS_MAX_WORKERS": "6"}, cores=2)

    assert (scaling.config.max_workers, scaling.capped_by) == (6, "setting")


def test_min_workers_above_the_cores_is_kept() -> None:
    scaling = scaling_for({"IRAAS_MIN_WORKERS": "3"}, cores=2)

    assert (scaling.config.min_workers, scaling.config.max_workers) == (3, 3)


@pytest.mark.parametrize("env", [{}, {"IRAAS_MAX_WORKERS": "6"}])
def test_workers_n_fixes_the_fleet_whatever_the_cores_and_settings(env: dict[str, str]) -> None:
    scaling = scaling_for(env, cores=2, fixed=5)

    assert (scaling.config.min_workers, scaling.config.max_workers, scaling.capped_by) == (5, 5, "fixed")
    assert scaling.fast_tick_s is None  # nothing to follow: it ticks only to replace crashed workers


def test_the_scaled_fleet_ticks_fast_during_a_burst_and_at_the_idle_tick_otherwise() -> None:
    assert (scaling_for({}, cores=2).fast_tick_s, scaling_for({}, cores=2).config.tick_s) == (FAST_TICK_S, IDLE_TICK_S)
    assert scaling_for({"IRAAS_SCALER_TICK_S": "1"}, cores=2).config.tick_s == 1.0  # as given
