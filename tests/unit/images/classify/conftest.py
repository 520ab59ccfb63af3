"""Fixtures of the classifier's unit tests."""

from __future__ import annotations

from pathlib import Path

import pytest

from iraas.images.model import files


@pytest.fixture
def weights(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A stand-in weights file, so cache names can be computed without the weights package."""
    path = tmp_path / "weights.pth"
    path.write_bytes(b"pretend state dict")
    monkeypatch.setattr(files, "weights_path", lambda network="lite0": path)
    return path
