"""The scaler stops only workers whose fresh heartbeat says idle; a stale beat proves nothing.

Real Scaler, policy and heartbeats in S3 (in-process moto, via the ``stack`` fixture); the fleet is
the edge, faked as a list of members that records what it was asked to launch and stop.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from iraas import aws
from iraas.scaling import heartbeat
from iraas.scaling.fleet import Member
from iraas.scaling.policy import ScalingConfig
from iraas.scaling.scaler import STALE_AFTER_S, Scaler
from iraas.scaling.settings import ScalingSettings

NOW = 1_000_000.0
IDLE_FOR_A_MINUTE = NOW - 60.0
# Scale in at once (the queue is empty, so the target is 0); idle 5 s is idle enough.
CONFIG = ScalingConfig(scale_in_after_s=0, idle_s=5)


@dataclass
class FakeFleet:
    ids: list[str]
    name: str = "fake"
    launched: list[int] = field(default_factory=list)
    stopped: list[str] = field(default_factory=list)

    def members(self) -> list[Member]:
        return [Member(i, stopping=i in self.stopped) for i in self.ids]

    def launch(self, count: int) -> list[str]:
        self.launched.append(count)
        return []

    def stop(self, ids: list[str]) -> None:
        self.stopped.extend(ids)


def _beat(
    settings: ScalingSettings, worker_id: str, *, busy: bool, updated_at: float, idle_since: float = IDLE_FOR_A_MINUTE
) -> None:
    # By default each worker last finished a batch a minute ago; a busy one has started another since.
    beat = heartbeat.Heartbeat(worker_id, busy, idle_since, updated_at)
    heartbeat.publish(aws.client(settings, "s3"), settings.status_bucket, beat)


def _scale_in(settings: ScalingSettings, fleet: FakeFleet, ticks: int = 3) -> list[str]:
    """Tick the scaler on an empty queue, one second apart; the ids the fleet was told to stop."""
    times = iter(NOW + i for i in range(ticks))
    scaler = Scaler(settings, fleet, CONFIG, s3=aws.client(settings, "s3"), clock=lambda: next(times))
    for _ in range(ticks):
        scaler.tick()
    assert fleet.launched == []
    return fleet.stopped


def test_a_worker_whose_idle_heartbeat_is_stale_is_not_stopped(scaling: ScalingSettings) -> None:
    _beat(scaling, "i-fresh", busy=False, updated_at=NOW)
    _beat(scaling, "i-stale", busy=False, updated_at=NOW - STALE_AFTER_S - 5)

    assert _scale_in(scaling, FakeFleet(["i-stale", "i-fresh"])) == ["i-fresh"]


def test_a_worker_whose_fresh_heartbeat_says_busy_is_never_stopped(scaling: ScalingSettings) -> None:
    _beat(scaling, "i-busy", busy=True, updated_at=NOW)
    _beat(scaling, "i-idle", busy=False, updated_at=NOW)

    assert _scale_in(scaling, FakeFleet(["i-busy", "i-idle"])) == ["i-idle"]


def test_a_worker_idle_for_less_than_idle_s_is_kept(scaling: ScalingSettings) -> None:
    _beat(scaling, "i-just-idle", busy=False, updated_at=NOW, idle_since=NOW)
    _beat(scaling, "i-idle", busy=False, updated_at=NOW)

    assert _scale_in(scaling, FakeFleet(["i-just-idle", "i-idle"])) == ["i-idle"]
