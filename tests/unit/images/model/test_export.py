"""iraas/images/model/export.py: ``ensure_model`` finds the cached model or says how to build it, and
builds the int8 model once from the calibration photos, else falls back to the float one.

No real model is built here: builders are replaced by stubs that write a file."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

from iraas.images.model import export, files, quantize
from iraas.images.model.export import ensure_model
from iraas.images.model.files import ModelUnavailableError, find_model, model_filename


def test_missing_model_without_weights_package_says_how_to_install(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(files, "weights_path", lambda network="lite0": None)
    with pytest.raises(ModelUnavailableError, match=r"make install.*iraas\[build\]"):
        ensure_model(tmp_path, model="lite0")


def test_missing_model_without_torch_says_how_to_install(
    weights: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setitem(sys.modules, "torch", None)  # makes `import torch` fail
    with pytest.raises(ModelUnavailableError, match="PyTorch is not installed"):
        ensure_model(tmp_path, model="lite0")
    assert not any(tmp_path.glob("*.onnx"))


@pytest.fixture
def models(tmp_path: Path, weights: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A model folder holding the float Lite0 file (as `make install` would have built it)."""
    folder = tmp_path / "models"
    folder.mkdir()
    (folder / model_filename(weights, "lite0")).write_bytes(b"float model")

    def no_float_build(*args, **kwargs):
        raise AssertionError("the float model is cached; nothing should build it")

    monkeypatch.setattr(export, "build_model", no_float_build)
    return folder


def test_without_calibration_photos_int8_falls_back_to_float(
    models: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("IRAAS_CALIBRATION_DIR", str(tmp_path / "no-photos-here"))
    lines: list[str] = []
    path = ensure_model(models, progress=lines.append, model="lite0-int8")
    assert path == find_model(models, "lite0")
    assert len(lines) == 1 and "no calibration photos" in lines[0] and "float model" in lines[0]
    assert find_model(models, "lite0-int8") is None


def test_int8_is_built_once_from_the_calibration_photos(
    models: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    photos = tmp_path / "photos"
    photos.mkdir()
    for i in range(3):
        (photos / f"{i}.jpg").write_bytes(b"jpeg")
    monkeypatch.setenv("IRAAS_CALIBRATION_DIR", str(photos))
    built: list[tuple[Path, Path, int]] = []

    def fake_build(float_path: Path, target: Path, calibration: list[Path], progress=print) -> None:
        built.append((float_path, target, len(calibration)))
        target.write_bytes(b"int8 model")

    monkeypatch.setattr(quantize, "build_int8", fake_build)
    first = ensure_model(models, progress=lambda line: None, model="lite0-int8")
    again = ensure_model(models, progress=lambda line: None, model="lite0-int8")
    assert first == again == models / model_filename(files.weights_path(), "lite0-int8")
    assert built == [(find_model(models, "lite0"), first, 3)]
