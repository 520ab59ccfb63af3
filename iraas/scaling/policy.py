"""The scaling decision, as a pure function of what the scaler sees.

The original greedy policy: one worker per ``requests_per_worker`` queued requests (visible plus
in flight), between ``min_workers`` and ``max_workers``. Scale-out is immediate. Scale-in holds the
highest target of the last ``scale_in_after_s`` seconds, so a steady load that wobbles around a
boundary does not start and stop workers on every tick, and then it picks only workers that have
been idle for ``idle_s``, longest idle first. A busy worker is never chosen.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field


@dataclass(frozen=True)
class ScalingConfig:
    max_workers: int = 19  # 20 instances with the web tier, as the original design had
    min_workers: int = 0
    requests_per_worker: int = 4
    tick_s: float = 2.0
    scale_in_after_s: float = 10.0  # how long a lower target must hold before workers go
    idle_s: float = 5.0  # how long a worker must have been idle to be stopped

    def __post_init__(self) -> None:
        if not 0 <= self.min_workers <= self.max_workers:
            raise ValueError("need 0 <= min_workers <= max_workers")
        if self.requests_per_worker < 1 or self.tick_s <= 0:
            raise ValueError("requests_per_worker must be >= 1 and tick_s > 0")


@dataclass(frozen=True)
class WorkerView:
    """One worker as the scaler sees it."""

    id: str
    busy: bool = False
    idle_since: float | None = None  # None: unknown (starting, or no heartbeat yet)
    stopping: bool = False  # asked to stop; finishing its batch


@dataclass(frozen=True)
class Decision:
    desired: int
    launch: int = 0
    stop: tuple[str, ...] = ()


@dataclass(frozen=True)
class ScalerState:
    """Recent targets, newest last: (time, target)."""

    history: tuple[tuple[float, int], ...] = field(default_factory=tuple)


def target_for(queued: int, config: ScalingConfig) -> int:
    """Workers the queue asks for right now."""
    wanted = math.ceil(max(0, queued) / config.requests_per_worker)
    return max(config.min_workers, min(config.max_workers, wanted))


def decide(
    queued: int,
    workers: list[WorkerView],
    now: float,
    state: ScalerState,
    config: ScalingConfig,
) -> tuple[Decision, ScalerState]:
    """What to launch and whom to stop; returns the new state to pass to the next call."""
    target = target_for(queued, config)
    window_start = now - config.scale_in_after_s
    history = tuple((t, d) for t, d in state.history if t > window_start) + ((now, target),)
    # Only a full window of lower targets lets the fleet shrink (at start-up the window is short,
    # so nothing is stopped until enough has been seen).
    seen_full_window = bool(state.history) and state.history[0][0] <= window_start
    desired = target if seen_full_window else max(target, len(_active(workers)))
    desired = max(desired, max(d for _, d in history))
    desired = min(desired, config.max_workers)

    active = _active(workers)
    if len(active) < desired:
        return Decision(desired=desired, launch=desired - len(active)), ScalerState(history)
    surplus = len(active) - desired
    # (idle since, id) of the workers idle long enough; the longest idle go first.
    idle = sorted(
        (w.idle_since, w.id)
        for w in active
        if not w.busy and w.idle_since is not None and now - w.idle_since >= config.idle_s
    )
    stop = tuple(worker_id for _, worker_id in idle[:surplus])
    return Decision(desired=desired, stop=stop), ScalerState(history)


def _active(workers: list[WorkerView]) -> list[WorkerView]:
    return [w for w in workers if not w.stopping]
