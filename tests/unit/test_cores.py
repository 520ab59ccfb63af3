"""The usable cores (iraas/config.py)."""

from __future__ import annotations

from pathlib import Path

from iraas.config import usable_cores


def test_usable_cores_honours_a_cgroup_quota(tmp_path: Path) -> None:
    cpu_max = tmp_path / "cpu.max"
    cpu_max.write_text("150000 100000\n")  # 1.5 CPUs: two processes can still use it
    assert 1 <= usable_cores(cpu_max) <= 2
    cpu_max.write_text("max 100000\n")
    assert usable_cores(cpu_max) == usable_cores(tmp_path / "absent") >= 1
