"""iraas/local/functions.py: how many face runners a function gets: one per event waiting or in
flight, at least one warm, at most the cap; extra ones stop once the backlog has stayed low, and a
runner that keeps dying at start is a crash loop."""

from __future__ import annotations

from pathlib import Path

import pytest

from iraas.local import functions
from iraas.local.functions import FunctionPool, Runner, desired_runners
from iraas.local.runners import LocalFunction
from iraas.queues import QueueDepth


@pytest.mark.parametrize(
    ("visible", "in_flight", "cap", "desired"),
    [(0, 0, 2, 1), (1, 0, 2, 1), (0, 2, 2, 2), (5, 1, 2, 2), (3, 1, 8, 4), (100, 0, 8, 8), (0, 0, 1, 1)],
)
def test_one_runner_per_event_between_one_warm_and_the_cap(visible: int, in_flight: int, cap: int, desired: int) -> None:
    assert desired_runners(visible, in_flight, cap) == desired


class FakeProcess:
    def __init__(self) -> None:
        self.alive, self.terminated = True, False

    def terminate(self) -> None:
        self.terminated = True

    def wait_or_kill(self, deadline: float) -> None:
        self.alive = False


def test_extra_runners_stop_only_after_the_backlog_stays_low_for_idle_s(tmp_path: Path) -> None:
    depth = [QueueDepth(6, 0)]
    pool = FunctionPool(
        LocalFunction("F", "h.py:f", "http://127.0.0.1:1/q", 30), tmp_path, {}, tmp_path,
        lambda: depth[0], cap=3, idle_s=10, use_zygote=False,
    )
    spawned: list[FakeProcess] = []

    def spawn(now: float) -> None:
        process = FakeProcess()
        spawned.append(process)
        slot = len(pool.runners)
        pool.runners.append(Runner(f"F-{slot}", slot, process, tmp_path / f"F-{slot}", tmp_path / "log", now, True))

    pool._spawn = spawn  # type: ignore[method-assign]

    pool.tick(now=0)  # six events: up to the cap at once
    assert len(spawned) == 3
    depth[0] = QueueDepth(0, 1)  # one left, in flight
    pool.tick(now=1)
    pool.tick(now=10.5)  # low for 9.5 s: all three stay
    assert not any(p.terminated for p in spawned)
    pool.tick(now=11)  # low for 10 s: the two newest stop, the oldest stays warm
    assert [p.terminated for p in spawned] == [False, True, True]
    for p in spawned[1:]:
        p.alive = False  # they finish their event and exit
    depth[0] = QueueDepth(0, 0)
    pool.tick(now=12)
    assert [r.process for r in pool.runners] == spawned[:1] and len(spawned) == 3  # retired: not replaced


def test_a_runner_that_keeps_dying_at_start_is_a_crash_loop(tmp_path: Path) -> None:
    pool = FunctionPool(
        LocalFunction("F", "h.py:f", "http://127.0.0.1:1/q", 30), tmp_path, {}, tmp_path,
        lambda: QueueDepth(0, 0), cap=2, idle_s=10, use_zygote=False,
    )

    def spawn(now: float) -> None:
        process = FakeProcess()
        process.alive = False  # dies at once
        pool.runners.append(Runner("F-0", 0, process, tmp_path / "F-0", tmp_path / "F-0.log", now, False))

    pool._spawn = spawn  # type: ignore[method-assign]
    pool.tick(now=0)
    pool.tick(now=1)
    pool.tick(now=2)
    with pytest.raises(functions.CrashLoop, match="F-0 exits at start"):
        pool.tick(now=3)
