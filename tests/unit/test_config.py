"""iraas/config.py: where the embedded stack's state is found, and the cores this process may use.

(Each part's settings, which read these, are tested with the part: tests/unit/images/test_settings.py,
tests/unit/classroom/test_settings.py, tests/unit/local/test_capacity.py.)"""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from iraas.config import default_home, usable_cores


def test_the_stack_is_found_from_a_subfolder(tmp_path):
    (tmp_path / ".iraas").mkdir()
    (tmp_path / ".iraas" / "stack.json").write_text("{}")
    (tmp_path / "chalice_web").mkdir()
    assert default_home({}, cwd=tmp_path / "chalice_web") == tmp_path / ".iraas"


# ---- usable cores: the affinity, lowered by a cgroup quota rounded up, at least 1 ---------------


@pytest.fixture
def eight_cpus(monkeypatch: pytest.MonkeyPatch) -> None:
    """This process may run on 8 CPUs, whatever the machine running the test has."""
    monkeypatch.setattr(os, "sched_getaffinity", lambda pid: set(range(8)))


@pytest.mark.parametrize(
    ("quota", "cores"),
    [
        ("150000 100000", 2),  # 1.5 CPUs: two processes can still use it
        ("50000 100000", 1),
        ("200000 100000", 2),
        ("201000 100000", 3),  # a little over 2 CPUs keeps a third core busy part of the time
        ("1000000 100000", 8),  # 10 CPUs of quota, 8 of affinity
        ("0 100000", 1),  # never fewer than one
    ],
)
def test_usable_cores_honours_a_cgroup_quota(tmp_path: Path, eight_cpus: None, quota: str, cores: int) -> None:
    cpu_max = tmp_path / "cpu.max"
    cpu_max.write_text(f"{quota}\n")
    assert usable_cores(cpu_max) == cores


@pytest.mark.parametrize(
    "text",
    [None, "max 100000\n", "", "garbled\n", "lots 100000\n", "150000 none\n"],
    ids=["no-file", "max", "empty", "one-word", "quota-not-a-number", "period-not-a-number"],
)
def test_without_a_quota_to_honour_the_affinity_decides(tmp_path: Path, eight_cpus: None, text: str | None) -> None:
    cpu_max = tmp_path / "cpu.max"  # None: no cgroup v2 file at all
    if text is not None:
        cpu_max.write_text(text)
    assert usable_cores(cpu_max) == 8
