"""bench/run.py (`make bench`): it says which benchmark runs (n of m, time so far), and its stacks'
state folders stay out of the results in bench/out/. (The CPU's name, which may start `uname`:
tests/integration/bench/test_run.py.)"""

from __future__ import annotations

from pathlib import Path

import pytest

import bench
from bench import run as bench_run


class Clock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


def test_each_step_is_announced_with_its_number_and_the_time_so_far_and_failures_are_returned() -> None:
    clock, lines = Clock(), []
    durations = {"classifier": 65, "service": 30, "faces": 5}

    def fake_run(step: str) -> int:
        clock.now += durations[step]
        return 3 if step == "service" else 0

    failed = bench_run.run_steps(list(durations), run=fake_run, say=lines.append, clock=clock)
    assert failed == ["service"]
    assert lines == [
        "== [1/3] classifier (elapsed 0:00)",
        "== [1/3] classifier: ok in 1:05",
        "== [2/3] service (elapsed 1:05)",
        "== [2/3] service: FAILED (exit 3) in 0:30",
        "== [3/3] faces (elapsed 1:35)",
        "== [3/3] faces: ok in 0:05",
        "== 2 of 3 steps ok in 1:40",
    ]


def test_an_unknown_step_is_a_usage_error(capsys) -> None:
    with pytest.raises(SystemExit) as exit_:
        bench_run.main(["--only", "clasifier"])
    assert exit_.value.code == 2
    assert "unknown step 'clasifier'" in capsys.readouterr().err


def test_scratch_folders_live_under_bench_out_scratch_and_start_empty(tmp_path: Path, monkeypatch) -> None:
    assert bench.SCRATCH == bench.OUT / "scratch"  # one folder that make bench removes, beside the results
    monkeypatch.setattr(bench, "SCRATCH", tmp_path / "out" / "scratch")
    home = bench.scratch("service-home-0")
    (home / "logs").mkdir()
    (home / "logs" / "web.log").write_text("from the last run")
    again = bench.scratch("service-home-0")
    assert again == tmp_path / "out" / "scratch" / "service-home-0"
    assert list(again.iterdir()) == []
