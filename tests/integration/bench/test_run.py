"""bench/run.py names the CPU in its report as the kernel does, and without /proc as Python's
platform module does (which starts `uname -p`: a process)."""

from __future__ import annotations

from pathlib import Path

from bench import run as bench_run


def test_the_report_names_the_cpu_as_the_kernel_does(tmp_path: Path) -> None:
    cpuinfo = tmp_path / "cpuinfo"
    cpuinfo.write_text("processor\t: 0\nvendor_id\t: GenuineIntel\nmodel name\t: Intel(R) Xeon(R) Processor\n")
    assert bench_run.cpu_model(cpuinfo) == "Intel(R) Xeon(R) Processor"
    assert bench_run.cpu_model(tmp_path / "missing")  # no /proc: still a name, from platform
