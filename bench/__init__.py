"""``make bench``: the benchmarks, outside the installed package. Figures go to ``bench/out/``;
the state folders of the stacks they start go to ``bench/out/scratch/``, which ``make bench``
removes after a run in which every step succeeded (a failed step's logs stay there to read)."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

OUT = Path(__file__).resolve().parent / "out"
SCRATCH = OUT / "scratch"


def scratch(name: str) -> Path:
    """An empty folder ``bench/out/scratch/<name>`` (a stack's home), emptied if it was there."""
    path = SCRATCH / name
    shutil.rmtree(path, ignore_errors=True)
    path.mkdir(parents=True)
    return path


def save_report(path: Path, report: dict) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(report, indent=2) + "\n")
    print(f"wrote {path}")
