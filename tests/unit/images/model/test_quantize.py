"""iraas/images/model/quantize.py: which photos calibrate the int8 model, and where they are found."""

from __future__ import annotations

from pathlib import Path

import pytest

from iraas.images.model import quantize


def test_calibration_takes_every_fifth_of_the_500_photos(tmp_path: Path) -> None:
    for i in range(500):
        (tmp_path / f"n{i:08d}_x.JPEG").write_bytes(b"")
    (tmp_path / "labels.csv").write_text("not a photo")
    chosen = quantize.calibration_photos(tmp_path)
    assert len(chosen) == 100
    assert [p.name for p in chosen[:3]] == ["n00000000_x.JPEG", "n00000005_x.JPEG", "n00000010_x.JPEG"]
    assert chosen[-1].name == "n00000495_x.JPEG"
    assert quantize.calibration_photos(tmp_path / "absent") == []


def test_calibration_dir_follows_the_shared_data(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    assert quantize.calibration_dir({"IRAAS_TEST_DATA": str(tmp_path)}) == tmp_path / "imagenet-sample" / "images"
    assert quantize.calibration_dir({"IRAAS_CALIBRATION_DIR": str(tmp_path)}) == tmp_path
