"""bench.cpu_split: perf's samples are put down to the right library, and a machine without perf
gets a recorded reason in the benchmarks table (docs/bench-figures.md) instead of a failed `make bench`."""

from __future__ import annotations

import pytest

from bench import cpu_split, table


@pytest.mark.parametrize(
    ("dso", "library"),
    [
        ("(/work/.venv/lib/python3.11/site-packages/onnxruntime/capi/onnxruntime_pybind11_state.so)", "onnxruntime"),
        ("(/work/.venv/lib/python3.11/site-packages/pillow.libs/libjpeg-6dc8d115.so.62.4.0)", "libjpeg"),
        ("(/work/.venv/lib/python3.11/site-packages/PIL/_imaging.cpython-311-x86_64-linux-gnu.so)", "Pillow"),
        ("(/root/.pyenv/versions/3.11.7/lib/libpython3.11.so.1.0)", "Python interpreter"),
        ("([kernel.kallsyms])", "kernel"),
        ("(/usr/lib/x86_64-linux-gnu/libc.so.6)", "libc"),
        ("([unknown])", "other"),
    ],
)
def test_samples_are_put_down_to_their_library(dso: str, library: str) -> None:
    assert cpu_split.library(dso) == library


def test_without_perf_the_table_says_why(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(cpu_split.shutil, "which", lambda name: None)
    reason = cpu_split.perf_problem()
    assert reason == "perf is not installed (Debian: linux-perf)"
    row = dict(table.rows({"cpu_split": {"skipped": reason}}))
    assert any(value == f"not measured: {reason}" for value in row.values())
