"""Where the shared test photos are: ``$IRAAS_TEST_DATA``, else ``../shared/data`` beside the checkout."""

from __future__ import annotations

import os
from pathlib import Path

from iraas.config import REPO_ROOT


def shared_data_dir() -> Path:
    return Path(os.environ.get("IRAAS_TEST_DATA", REPO_ROOT.parent / "shared" / "data"))
