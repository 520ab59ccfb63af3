"""Where things are in a source checkout: the files the embedded stack, benches and tests share."""

from __future__ import annotations

import os
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[1]
TEMPLATE = REPO_ROOT / "template.yaml"
CHALICE_PROJECT = REPO_ROOT / "chalice_web"
BENCH_OUT = REPO_ROOT / "bench" / "out"


def shared_data_dir() -> Path:
    """The shared photos: ``$IRAAS_TEST_DATA``, else ``../shared/data`` beside the checkout."""
    return Path(os.environ.get("IRAAS_TEST_DATA", REPO_ROOT.parent / "shared" / "data"))
