"""The scaler stops only workers whose fresh heartbeat says idle; a stale beat proves nothing.

Real Scaler and policy; the heartbeats in the status store's in-memory twin; the fleet is the
edge, faked as a list of members that records what it was asked to launch and stop.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from types import SimpleNamespace

import pytest

from iraas.scaling.fleet import Member
from iraas.scaling.policy import ScalingConfig
from iraas.scaling.scaler import STALE_AFTER_S, Scaler
from iraas.scaling.status import Heartbeat, InMemoryStatusStore

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


@pytest.fixture
def store() -> InMemoryStatusStore:
    return InMemoryStatusStore()


def _beat(
    store: InMemoryStatusStore, worker_id: str, *, busy: bool, updated_at: float, idle_since: float = IDLE_FOR_A_MINUTE
) -> None:
    # By default each worker last finished a batch a minute ago; a busy one has started another since.
    store.beat(Heartbeat(worker_id, busy, idle_since, updated_at))


def _scale_in(store: InMemoryStatusStore, fleet: FakeFleet, ticks: int = 3) -> list[str]:
    """Tick the scaler on an empty queue, one second apart; the ids the fleet was told to stop."""
    times = iter(NOW + i for i in range(ticks))
    scaler = Scaler(SimpleNamespace(), fleet, CONFIG, store=store, queued=lambda: 0, clock=lambda: next(times))  # type: ignore[arg-type]
    for _ in range(ticks):
        scaler.tick()
    assert fleet.launched == []
    return fleet.stopped


def test_a_worker_whose_idle_heartbeat_is_stale_is_not_stopped(store: InMemoryStatusStore) -> None:
    _beat(store, "i-fresh", busy=False, updated_at=NOW)
    _beat(store, "i-stale", busy=False, updated_at=NOW - STALE_AFTER_S - 5)

    assert _scale_in(store, FakeFleet(["i-stale", "i-fresh"])) == ["i-fresh"]


def test_a_worker_whose_fresh_heartbeat_says_busy_is_never_stopped(store: InMemoryStatusStore) -> None:
    _beat(store, "i-busy", busy=True, updated_at=NOW)
    _beat(store, "i-idle", busy=False, updated_at=NOW)

    assert _scale_in(store, FakeFleet(["i-busy", "i-idle"])) == ["i-idle"]


def test_a_worker_idle_for_less_than_idle_s_is_kept(store: InMemoryStatusStore) -> None:
    _beat(store, "i-just-idle", busy=False, updated_at=NOW, idle_since=NOW)
    _beat(store, "i-idle", busy=False, updated_at=NOW)

    assert _scale_in(store, FakeFleet(["i-just-idle", "i-idle"])) == ["i-idle"]
