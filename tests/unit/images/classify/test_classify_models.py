"""The model registry, IRAAS_MODEL, the int8 cache and its fallback, and reduced-scale JPEG decoding.

No real model is built here: builders are replaced by stubs that write a file.
"""

from __future__ import annotations

import io
from pathlib import Path

import pytest
from PIL import Image

from iraas.config import RESOURCE_ENV
from iraas.errors import ConfigError
from iraas.images.model import export, files, quantize
from iraas.images.model.export import ensure_model
from iraas.images.model.files import (
    INT8_BUILDER_VERSION,
    find_model,
    int8_filename,
    model_filename,
    model_spec,
)
from iraas.images.model.models import DEFAULT_MODEL, MODELS, default_model, get_model
from iraas.images.settings import ImageSettings, load_image_settings
from iraas.media.validation import decode_rgb

LIMIT = 50_000_000


# --- the registry and the setting -------------------------------------------------------


def test_registry_names_sizes_and_default() -> None:
    assert set(MODELS) == {"lite0-int8", "lite0", "lite2"}
    assert DEFAULT_MODEL == "lite0-int8" and MODELS[DEFAULT_MODEL].int8
    assert (get_model("lite0").image_size, get_model("lite2").image_size) == (224, 260)
    assert get_model("lite0-int8").float_name == "lite0"
    assert len({spec.stem for spec in MODELS.values()}) == len(MODELS)  # one cache name per model


def test_unknown_model_names_the_choices() -> None:
    with pytest.raises(ConfigError, match=r"IRAAS_MODEL='resnet50'.*lite0-int8, lite0, lite2"):
        get_model("resnet50")


def test_default_model_reads_iraas_model() -> None:
    assert default_model({}) == "lite0-int8"
    assert default_model({"IRAAS_MODEL": ""}) == "lite0-int8"
    assert default_model({"IRAAS_MODEL": "lite2"}) == "lite2"
    with pytest.raises(ConfigError, match="IRAAS_MODEL"):
        default_model({"IRAAS_MODEL": "LITE0"})  # names are exact


def test_settings_carry_the_checked_model(tmp_path: Path) -> None:
    env = {"IRAAS_HOME": str(tmp_path), **{var: f"x-{i}" for i, var in enumerate(RESOURCE_ENV.values())}}
    assert load_image_settings(env).model == "lite0-int8"
    assert load_image_settings({**env, "IRAAS_MODEL": "lite0"}).model == "lite0"
    with pytest.raises(ConfigError, match="IRAAS_MODEL='lite9'"):
        load_image_settings({**env, "IRAAS_MODEL": "lite9"})
    assert ImageSettings.model == DEFAULT_MODEL


def test_none_means_the_configured_model(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("IRAAS_MODEL", "lite2")
    assert model_spec(None).name == "lite2"
    monkeypatch.delenv("IRAAS_MODEL")
    assert model_spec(None).name == "lite0-int8"


# --- cache names, the int8 build and its fallback -----------------------------------------


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


def test_int8_file_name_shares_the_weights_hash(weights: Path) -> None:
    float_name = model_filename(weights, "lite0")
    int8_name = model_filename(weights, "lite0-int8")
    assert int8_name == float_name.replace("efficientnet_lite0-", "efficientnet_lite0_int8-").replace(
        "-v1.onnx", f"-v{INT8_BUILDER_VERSION}.onnx"
    )
    assert int8_filename(Path("/m") / float_name) == int8_name


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


# --- reduced-scale JPEG decoding ---------------------------------------------------------


def jpeg(img: Image.Image, **options) -> bytes:
    buf = io.BytesIO()
    img.save(buf, "JPEG", quality=95, **options)
    return buf.getvalue()


def split_image(size: tuple[int, int]) -> Image.Image:
    """Left half red, right half blue."""
    img = Image.new("RGB", size, (255, 0, 0))
    img.paste((0, 0, 255), (size[0] // 2, 0, size[0], size[1]))
    return img


def test_large_jpeg_is_decoded_at_reduced_scale_never_below_min_side() -> None:
    data = jpeg(split_image((2400, 1200)))
    assert decode_rgb(data, LIMIT).size == (2400, 1200)
    assert decode_rgb(data, LIMIT, min_side=256).size == (600, 300)  # 1/4: 1/8 would give 150 < 256
    assert decode_rgb(data, LIMIT, min_side=600).size == (1200, 600)  # 1/2: the short side stays 600
    assert decode_rgb(data, LIMIT, min_side=601).size == (2400, 1200)  # 1/2 would give 600 < 601
    assert decode_rgb(jpeg(split_image((300, 280))), LIMIT, min_side=256).size == (300, 280)


def test_reduced_scale_keeps_exif_orientation() -> None:
    exif = Image.Exif()
    exif[0x0112] = 6  # display rotated 90 degrees clockwise
    img = decode_rgb(jpeg(split_image((2400, 1200)), exif=exif.tobytes()), LIMIT, min_side=256)
    assert img.size == (300, 600)
    red, blue = img.getpixel((150, 100)), img.getpixel((150, 500))
    assert red[0] > 200 and red[2] < 60  # the left (red) half is now on top
    assert blue[2] > 200 and blue[0] < 60


def test_min_side_leaves_other_formats_at_full_size() -> None:
    buf = io.BytesIO()
    split_image((2400, 1200)).save(buf, "PNG")
    assert decode_rgb(buf.getvalue(), LIMIT, min_side=256).size == (2400, 1200)
