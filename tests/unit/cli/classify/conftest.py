"""Fixtures of ``iraas classify``'s unit tests: the model's tiny synthetic classifier (made by
tests/unit/images/model/conftest.py), which ``iraas classify`` loads instead of the real one."""

from __future__ import annotations

from pathlib import Path

import pytest

from iraas.images.model import runtime
from tests.unit.images.model.conftest import build_fake_model


@pytest.fixture(scope="module")
def fake_model(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return build_fake_model(tmp_path_factory.mktemp("model") / "fake.onnx")


@pytest.fixture
def use_fake_model(monkeypatch: pytest.MonkeyPatch, fake_model: Path) -> None:
    monkeypatch.setattr(runtime, "ensure_model", lambda model_dir, progress=print, model=None: fake_model)
