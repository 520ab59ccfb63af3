"""The int8 model: onnxruntime static quantization of the float ONNX file (build time, once).

Recipe (bump :data:`.files.INT8_BUILDER_VERSION` when it changes): ``quant_pre_process``
(shape inference, graph clean-up), then ``quantize_static`` in QDQ format, weights int8
per output channel (symmetric), activations uint8 (the u8 x s8 products that x86's VNNI and AMX
instructions compute), ranges from MinMax calibration; the input's normalisation (the nodes before
the first convolution) stays float. onnxruntime fuses the QDQ pairs into
QLinearConv / QLinearAdd / QGemm when it loads the file.

Calibration photos: :data:`CALIBRATION_PHOTOS` images from :func:`calibration_dir`, namely every
fifth file of the folder sorted by name (with the 500 shared ImageNet photos: positions 0, 5, ...,
495, one photo per class for 100 classes). They are decoded and preprocessed exactly as the
classifier does. Calibration only sets activation ranges (no labels are read); the 500-photo
accuracy test therefore includes these 100 photos, which the figures in :mod:`.models` say.

Without calibration photos (a machine without ``../shared``) or without the ``onnx`` package,
:func:`ensure_int8` returns the float model and says so in one line; the int8 file is built the
first time it is asked for where photos are present.
"""

from __future__ import annotations

import logging
import os
import tempfile
import time
import warnings
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path

from iraas.config import REPO_ROOT

CALIBRATION_PHOTOS = 100
CALIBRATION_BATCH = 10
PHOTO_SUFFIXES = {".jpeg", ".jpg", ".png"}
# The int8 model must agree with the float one on the calibration photos' top-1 at least this often
# (observed: ~97%); less means a broken recipe, not a rounding difference.
MIN_AGREEMENT = 0.9


def calibration_dir(env: Mapping[str, str] | None = None) -> Path:
    """``$IRAAS_CALIBRATION_DIR``, else the shared ImageNet photos (``$IRAAS_TEST_DATA`` or
    ``../shared/data`` beside the checkout, then ``imagenet-sample/images``)."""
    env = os.environ if env is None else env
    if env.get("IRAAS_CALIBRATION_DIR"):
        return Path(env["IRAAS_CALIBRATION_DIR"]).expanduser()
    data = Path(env.get("IRAAS_TEST_DATA") or REPO_ROOT.parent / "shared" / "data")
    return data / "imagenet-sample" / "images"


def calibration_photos(folder: Path, count: int = CALIBRATION_PHOTOS) -> list[Path]:
    """At most ``count`` photos of ``folder``, evenly spaced in name order (every fifth of 500)."""
    if not folder.is_dir():
        return []
    photos = sorted(p for p in folder.iterdir() if p.suffix.lower() in PHOTO_SUFFIXES and p.is_file())
    step = max(1, len(photos) // count)
    return photos[::step][:count]


def ensure_int8(float_path: Path, target: Path, progress: Callable[[str], None] = print) -> Path:
    """``target`` once quantized from ``float_path``; ``float_path`` where that cannot be done here."""
    folder = calibration_dir()
    photos = calibration_photos(folder)
    if not photos:
        progress(
            f"no calibration photos in {folder} (set IRAAS_CALIBRATION_DIR): "
            f"using the float model {float_path.name}; the int8 one is built where photos are"
        )
        return float_path
    try:
        import onnx  # noqa: F401 - onnxruntime.quantization needs it
    except ImportError:
        progress(f"cannot build the int8 model here (no onnx package; pip install 'iraas[build]'): using {float_path.name}")
        return float_path
    build_int8(float_path, target, photos, progress)
    return target


def calibration_batches(photos: Sequence[Path], image_size: int) -> list:
    """The photos as the classifier feeds them: (N, size, size, 3) uint8 batches."""
    from iraas.media.uploads import UploadLimits
    from iraas.media.validation import ImageError

    from .preprocess import batch, crop_and_resize, decode_pixels, resize_for

    arrays = []
    for path in photos:
        try:
            pixels = decode_pixels(path.read_bytes(), UploadLimits.max_image_pixels, resize_for(image_size))
        except (ImageError, OSError):
            continue  # a bad file in a user's folder only costs one calibration photo
        arrays.append(crop_and_resize(pixels, crop=image_size))
    if not arrays:
        raise RuntimeError("none of the calibration photos could be decoded")
    return [batch(arrays[i : i + CALIBRATION_BATCH], crop=image_size) for i in range(0, len(arrays), CALIBRATION_BATCH)]


def input_nodes(path: Path) -> list[str]:
    """The names of the graph's nodes before its first convolution (the input's normalisation)."""
    import onnx

    names = []
    for node in onnx.load(str(path)).graph.node:  # stored in topological order
        if node.op_type == "Conv":
            break
        names.append(node.name)
    return names


def build_int8(
    float_path: Path, target: Path, photos: Sequence[Path], progress: Callable[[str], None] = print
) -> None:
    """Quantize ``float_path`` into ``target`` (atomically), calibrated on ``photos``."""
    import numpy as np
    import onnxruntime as ort
    from onnxruntime.quantization import (
        CalibrationDataReader,
        CalibrationMethod,
        QuantFormat,
        QuantType,
        quantize_static,
    )
    from onnxruntime.quantization.shape_inference import quant_pre_process

    from .files import INPUT_NAME, OUTPUT_NAME, write_atomically

    started = time.monotonic()
    progress(f"building the int8 classifier model {target.name} from {float_path.name} (one-off, under a minute)...")
    float_session = ort.InferenceSession(str(float_path), providers=["CPUExecutionProvider"])
    image_size = int(float_session.get_inputs()[0].shape[1])  # N x side x side x 3
    batches = calibration_batches(photos, image_size)
    progress(f"  calibrating on {sum(len(b) for b in batches)} photos from {photos[0].parent}")

    class Reader(CalibrationDataReader):
        def __init__(self) -> None:
            self.remaining = iter(batches)

        def get_next(self) -> dict | None:
            x = next(self.remaining, None)
            return None if x is None else {INPUT_NAME: x}

    quant_logger = logging.getLogger()  # onnxruntime.quantization logs to the root logger
    level = quant_logger.level
    quant_logger.setLevel(logging.ERROR)
    try:
        with tempfile.TemporaryDirectory(prefix=".int8-", dir=target.parent) as tmp, warnings.catch_warnings():
            warnings.simplefilter("ignore")
            prepared, quantized = Path(tmp) / "prepared.onnx", Path(tmp) / "int8.onnx"
            quant_pre_process(str(float_path), str(prepared))
            quantize_static(
                str(prepared),
                str(quantized),
                Reader(),
                quant_format=QuantFormat.QDQ,
                per_channel=True,
                activation_type=QuantType.QUInt8,
                weight_type=QuantType.QInt8,
                calibrate_method=CalibrationMethod.MinMax,
                # The input's cast, layout and scaling stay float: quantizing them would only add a
                # rounding step before the first convolution quantizes its input anyway.
                nodes_to_exclude=input_nodes(prepared),
            )
            data = quantized.read_bytes()
    finally:
        quant_logger.setLevel(level)
    progress("  checking the int8 model against the float one")
    int8_session = ort.InferenceSession(data, providers=["CPUExecutionProvider"])
    agree = []
    for x in batches:
        (expected,) = float_session.run([OUTPUT_NAME], {INPUT_NAME: x})
        (actual,) = int8_session.run([OUTPUT_NAME], {INPUT_NAME: x})
        agree.extend(np.argmax(expected, axis=1) == np.argmax(actual, axis=1))
    agreement = float(np.mean(agree))
    if agreement < MIN_AGREEMENT:
        raise RuntimeError(f"int8 model agrees with the float one on only {agreement:.0%} of the calibration photos")
    write_atomically(target, data)
    progress(
        f"  wrote {target} ({len(data) / 1e6:.1f} MB, same top-1 as float on {agreement:.0%} "
        f"of the calibration photos) in {time.monotonic() - started:.0f} s"
    )
