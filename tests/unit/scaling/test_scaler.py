"""iraas/scaling/scaler.py: how often the scaler ticks and what each tick costs, and which workers it
stops.

- Each tick's cost: queue depths read, heartbeats read and statuses published (on AWS each is one
  SQS call, an S3 LIST and a GET per worker, one S3 PUT). The fast-tick rule is pure; the Scaler
  runs on an injected clock, with a queue depth that counts its reads and the status store's
  in-memory twin, which counts its calls, so the counts per tick are exact.
- It stops only workers whose fresh heartbeat says idle; a stale beat proves nothing. Real Scaler
  and policy; the heartbeats in the status store's in-memory twin; the fleet is the edge, faked as a
  list of members that records what it was asked to launch and stop.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from types import SimpleNamespace

import pytest

from iraas.scaling.fleet import Member
from iraas.scaling.policy import ScalingConfig
from iraas.scaling.scaler import HEARTBEATS_FRESH_S, STALE_AFTER_S, STATUS_REFRESH_S, Scaler, tick_interval
from iraas.scaling.status import Heartbeat, InMemoryStatusStore

FAST, IDLE = 0.25, 2.0
CONFIG = ScalingConfig(max_workers=2, tick_s=IDLE, scale_in_after_s=1.0, idle_s=0.0)


@pytest.mark.parametrize(
    ("queued", "running", "desired", "expected"),
    [
        (0, 0, 0, IDLE),  # idle
        (5, 2, 2, FAST),  # requests queued
        (0, 1, 2, FAST),  # fewer workers than desired (a launch failed, a worker crashed)
        (0, 2, 0, IDLE),  # scaling in: no hurry
    ],
)
def test_fast_ticks_while_a_burst_is_on(queued: int, running: int, desired: int, expected: float) -> None:
    assert tick_interval(queued, running, desired, IDLE, FAST) == expected


def test_without_a_fast_tick_it_always_ticks_at_tick_s() -> None:
    # The EC2 scaler: it runs in Lambda, and each tick costs API calls.
    assert tick_interval(100, 0, 19, IDLE, None) == IDLE


@dataclass
class Queue:
    """The request queue's depth, and how often the scaler read it."""

    depth: int = 0
    reads: int = 0

    def __call__(self) -> int:
        self.reads += 1
        return self.depth


@dataclass
class FakeFleet:
    ids: list[str] = field(default_factory=list)
    stopped: list[str] = field(default_factory=list)
    name: str = "local"

    def members(self) -> list[Member]:
        return [Member(i, i in self.stopped) for i in self.ids if i not in self.stopped]

    def launch(self, count: int) -> list[str]:
        new = [f"local-{len(self.ids) + n + 1}" for n in range(count)]
        self.ids += new
        return new

    def stop(self, ids: list[str]) -> None:
        self.stopped += ids


class Clock:
    def __init__(self) -> None:
        self.now = 1_000_000.0

    def __call__(self) -> float:
        return self.now


def scaler_on_fakes() -> tuple[Scaler, Queue, InMemoryStatusStore, FakeFleet, Clock]:
    queue, store, fleet, clock = Queue(), InMemoryStatusStore(), FakeFleet(), Clock()
    scaler = Scaler(
        SimpleNamespace(), fleet, CONFIG, store=store, queued=queue, clock=clock,  # type: ignore[arg-type]
        capped_by="cpu", fast_tick_s=FAST,
    )
    return scaler, queue, store, fleet, clock


def run_for(scaler: Scaler, clock: Clock, seconds: float) -> int:
    """Tick as Scaler.run would, waiting ``scaler.interval`` between ticks; returns the ticks."""
    end, ticks = clock.now + seconds, 0
    while clock.now < end:
        scaler.tick()
        ticks += 1
        clock.now += scaler.interval
    return ticks


def test_idle_it_ticks_at_tick_s_with_one_call_a_tick_and_publishes_once() -> None:
    scaler, queue, store, _, clock = scaler_on_fakes()

    ticks = run_for(scaler, clock, 20)

    assert ticks == 10  # every 2 s
    assert queue.reads == ticks
    # The fleet status is published once: nothing changed since, and 20 s is within the refresh.
    assert store.calls == Counter(publish=1)
    status = store.fleet()
    assert (status.running, status.desired, status.max, status.capped_by) == (0, 0, 2, "cpu")


def test_an_unchanged_status_is_published_again_after_the_refresh_period() -> None:
    scaler, _, store, _, clock = scaler_on_fakes()

    run_for(scaler, clock, STATUS_REFRESH_S + 1)

    assert store.calls["publish"] == 2


def test_a_burst_makes_it_tick_fast_and_launch_at_once_and_reading_no_heartbeats() -> None:
    scaler, queue, store, fleet, clock = scaler_on_fakes()
    scaler.tick()
    assert scaler.interval == IDLE

    queue.depth = 100  # a burst arrives
    decision = scaler.tick()
    assert decision.launch == 2 and len(fleet.ids) == 2  # capped at max_workers
    assert scaler.interval == FAST

    before = Counter(store.calls)
    ticks = run_for(scaler, clock, 2.0)
    assert ticks == 8  # every 0.25 s
    assert queue.reads == 2 + ticks
    # The fleet is what is desired: nobody to stop, so no heartbeats are read; nothing changed.
    assert store.calls - before == Counter()


def test_heartbeats_are_read_only_when_a_worker_might_be_stopped() -> None:
    scaler, queue, store, fleet, clock = scaler_on_fakes()
    queue.depth = 8
    scaler.tick()
    for worker_id in fleet.ids:
        store.beat(Heartbeat(worker_id, False, clock.now - 60, clock.now))
    store.calls.clear()

    queue.depth = 0  # drained: after scale_in_after_s the target drops and idle workers go
    run_for(scaler, clock, 2 * IDLE)

    assert fleet.stopped == ["local-1", "local-2"]
    assert store.calls["heartbeats"] == 1  # read once, when a worker might be stopped
    assert scaler.interval == IDLE


def test_heartbeats_read_moments_ago_are_not_read_again() -> None:
    scaler, queue, store, fleet, clock = scaler_on_fakes()
    queue.depth = 8
    scaler.tick()
    for worker_id in fleet.ids:  # both busy: a surplus that cannot be stopped yet
        store.beat(Heartbeat(worker_id, True, None, clock.now))
    queue.depth = 1  # one queued: fast ticks, a target of 1, two workers
    clock.now += CONFIG.scale_in_after_s + 1
    store.calls.clear()

    ticks = run_for(scaler, clock, 2.0)

    assert scaler.interval == FAST and fleet.stopped == []
    # Eight fast ticks in 2 s, and the heartbeats read once per HEARTBEATS_FRESH_S of them.
    assert (ticks, store.calls["heartbeats"]) == (8, 2.0 / HEARTBEATS_FRESH_S)


# ---- which workers it stops: only those whose fresh heartbeat says idle -----------------------


NOW = 1_000_000.0
IDLE_FOR_A_MINUTE = NOW - 60.0

# Scale in at once (the queue is empty, so the target is 0); idle 5 s is idle enough.
SCALE_IN_AT_ONCE = ScalingConfig(scale_in_after_s=0, idle_s=5)


@dataclass
class StoppingFleet:
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


def _scale_in(store: InMemoryStatusStore, fleet: StoppingFleet, ticks: int = 3) -> list[str]:
    """Tick the scaler on an empty queue, one second apart; the ids the fleet was told to stop."""
    times = iter(NOW + i for i in range(ticks))
    scaler = Scaler(SimpleNamespace(), fleet, SCALE_IN_AT_ONCE, store=store, queued=lambda: 0, clock=lambda: next(times))  # type: ignore[arg-type]
    for _ in range(ticks):
        scaler.tick()
    assert fleet.launched == []
    return fleet.stopped


def test_a_worker_whose_idle_heartbeat_is_stale_is_not_stopped(store: InMemoryStatusStore) -> None:
    _beat(store, "i-fresh", busy=False, updated_at=NOW)
    _beat(store, "i-stale", busy=False, updated_at=NOW - STALE_AFTER_S - 5)

    assert _scale_in(store, StoppingFleet(["i-stale", "i-fresh"])) == ["i-fresh"]


def test_a_worker_whose_fresh_heartbeat_says_busy_is_never_stopped(store: InMemoryStatusStore) -> None:
    _beat(store, "i-busy", busy=True, updated_at=NOW)
    _beat(store, "i-idle", busy=False, updated_at=NOW)

    assert _scale_in(store, StoppingFleet(["i-busy", "i-idle"])) == ["i-idle"]


def test_a_worker_idle_for_less_than_idle_s_is_kept(store: InMemoryStatusStore) -> None:
    _beat(store, "i-just-idle", busy=False, updated_at=NOW, idle_since=NOW)
    _beat(store, "i-idle", busy=False, updated_at=NOW)

    assert _scale_in(store, StoppingFleet(["i-just-idle", "i-idle"])) == ["i-idle"]
