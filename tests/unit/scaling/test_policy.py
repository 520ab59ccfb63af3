"""iraas/scaling/policy.py: the scaling policy on traces: bursts, trickles, steady loads, and scale-in of idle workers only."""

from __future__ import annotations

from dataclasses import dataclass, field

from iraas.scaling.policy import ScalerState, ScalingConfig, WorkerView, decide, target_for

CONFIG = ScalingConfig(max_workers=19, requests_per_worker=4, tick_s=2, scale_in_after_s=10, idle_s=5)


@dataclass
class SimFleet:
    """A fleet that obeys decisions: launched workers start idle, stopped ones leave."""

    workers: dict[str, WorkerView] = field(default_factory=dict)
    launched: int = 0
    stopped: list[str] = field(default_factory=list)
    state: ScalerState = field(default_factory=ScalerState)
    sizes: list[int] = field(default_factory=list)

    def tick(self, now: float, queued: int, busy: int = 0) -> int:
        """One scaler tick; the first ``busy`` workers are working."""
        views = [
            WorkerView(w.id, busy=i < busy, idle_since=None if i < busy else w.idle_since)
            for i, w in enumerate(self.workers.values())
        ]
        decision, self.state = decide(queued, views, now, self.state, CONFIG)
        for _ in range(decision.launch):
            self.launched += 1
            worker_id = f"w{self.launched}"
            self.workers[worker_id] = WorkerView(worker_id, idle_since=now)
        for worker_id in decision.stop:
            assert not any(v.busy for v in views if v.id == worker_id), "stopped a busy worker"
            self.stopped.append(worker_id)
            del self.workers[worker_id]
        for i, view in enumerate(views):
            if i < busy and view.id in self.workers:  # busy workers stay busy until told otherwise
                self.workers[view.id] = WorkerView(view.id, idle_since=now)
        self.sizes.append(len(self.workers))
        return decision.desired


def test_one_worker_per_four_queued_requests_up_to_the_maximum():
    assert [target_for(q, CONFIG) for q in (0, 1, 4, 5, 8, 9, 76, 77, 1000)] == [0, 1, 1, 2, 2, 3, 19, 19, 19]
    assert target_for(0, ScalingConfig(min_workers=2)) == 2


def test_a_burst_of_100_scales_out_at_once_then_back_to_zero_once_drained():
    fleet = SimFleet()
    assert fleet.tick(0, queued=100) == 19
    assert len(fleet.workers) == 19  # all at once, not one per tick
    t = 0
    for queued in (80, 60, 40, 20, 5):
        t += 2
        fleet.tick(t, queued=queued, busy=len(fleet.workers))
    assert len(fleet.workers) == 19  # no scale-in while work keeps coming
    while t < 60:
        t += 2
        fleet.tick(t, queued=0)
    assert fleet.workers == {} and fleet.launched == 19  # scaled to zero, nothing relaunched


def test_a_trickle_keeps_one_worker_instead_of_starting_and_stopping_it():
    fleet = SimFleet()
    for t in range(0, 120, 2):
        fleet.tick(t, queued=1 if t % 6 == 0 else 0, busy=1 if t % 6 == 0 else 0)
    assert fleet.launched == 1 and fleet.stopped == []


def test_a_steady_load_around_a_boundary_does_not_oscillate():
    fleet = SimFleet()
    for i, t in enumerate(range(0, 200, 2)):
        queued = (7, 9, 8, 10, 6)[i % 5]  # 2 or 3 workers' worth
        fleet.tick(t, queued=queued, busy=len(fleet.workers))
    assert fleet.launched == 3 and fleet.stopped == []
    assert set(fleet.sizes[1:]) == {3}


def test_a_burst_during_scale_in_reuses_the_workers_that_are_left():
    fleet = SimFleet()
    fleet.tick(0, queued=40)
    t = 0
    while len(fleet.workers) > 4:  # scale-in under way
        t += 2
        fleet.tick(t, queued=0)
    left = len(fleet.workers)
    fleet.tick(t + 2, queued=40)
    assert len(fleet.workers) == 10 and fleet.launched == 10 + (10 - left)


def test_a_queue_that_never_drains_keeps_its_workers():
    fleet = SimFleet()
    for t in range(0, 300, 2):
        fleet.tick(t, queued=30, busy=len(fleet.workers))
    assert fleet.launched == 8 and fleet.stopped == []


def test_only_workers_idle_long_enough_are_stopped_longest_idle_first():
    workers = [
        WorkerView("busy", busy=True),
        WorkerView("fresh", idle_since=98.0),
        WorkerView("old", idle_since=50.0),
        WorkerView("older", idle_since=10.0),
        WorkerView("unknown", idle_since=None),
        WorkerView("leaving", idle_since=0.0, stopping=True),
    ]
    state = ScalerState(history=((80.0, 0),))
    decision, _ = decide(4, workers, 100.0, state, CONFIG)  # 1 wanted, 5 active
    assert decision.desired == 1 and decision.stop == ("older", "old")


def test_stopping_workers_are_replaced_when_work_returns():
    workers = [WorkerView("a", idle_since=0.0, stopping=True), WorkerView("b", idle_since=0.0, stopping=True)]
    decision, _ = decide(8, workers, 100.0, ScalerState(), CONFIG)
    assert decision.launch == 2
