"""Batched classification (the worker's and ``iraas classify``'s inference): the built-in ImageNet
models, or a model of one's own (:mod:`.own`).

Needs ``iraas[worker]`` (numpy, and OpenVINO or onnxruntime: :mod:`.runtimes`); torch is not
imported here. Only the chosen runtime is imported.
"""

from __future__ import annotations

import os
import sys
import threading
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

import numpy as np
from PIL import Image

from iraas.errors import ConfigError
from iraas.images.jobs import MAX_TOP
from iraas.media.uploads import UploadLimits
from iraas.media.validation import ImageError

from .export import ensure_model
from .files import ModelUnavailableError
from .labels import Label, imagenet_labels
from .models import check_model_name, default_model, is_own_model
from .own import (
    OwnModel,
    Tensor,
    check_signature,
    label_count_mismatch,
    load_own_model,
    own_model_path,
    runtime_refusal,
)
from .preprocess import (
    CROP,
    batch,
    crop_and_resize,
    decode_pixels,
    preprocess,
    resize_for,
    to_nchw_float,
    to_nchw_uint8,
)
from .runtimes import RUNTIMES, default_runtime, get_runtime

# Importing openvino starts its conversion tools' telemetry (the openvino-telemetry package, which
# it depends on, reports usage to Google Analytics from a child process unless
# ~/intel/openvino_telemetry says 0). A service must not phone home: hidden from this process
# before anything imports openvino, the package cannot be imported and OpenVINO falls back to its
# own no-op stub.
sys.modules.setdefault("openvino_telemetry", None)  # type: ignore[arg-type]

TOP_K = 5  # the answer's top5
OPENVINO_CACHE = ".openvino-cache"  # OpenVINO's compiled models, in the model folder
DEFAULT_MAX_PIXELS = UploadLimits.max_image_pixels


@dataclass(frozen=True)
class Prediction:
    label: str
    wnid: str | None  # None for a model of one's own: its labels are plain names
    confidence: float  # softmax probability, 0..1
    index: int

    def to_dict(self) -> dict:
        """``label``, ``wnid`` (left out when there is none) and ``confidence``."""
        if self.wnid is None:
            return {"label": self.label, "confidence": round(self.confidence, 4)}
        return {"label": self.label, "wnid": self.wnid, "confidence": round(self.confidence, 4)}


@dataclass(frozen=True)
class Classification:
    # The most likely first: TOP_K of them, or as many as were asked for; never more than the model has labels.
    ranked: tuple[Prediction, ...]

    @property
    def best(self) -> Prediction:
        return self.ranked[0]

    @property
    def top5(self) -> tuple[Prediction, ...]:
        return self.ranked[:TOP_K]

    def to_dict(self, top: int | None = None) -> dict:
        """The best prediction's fields and ``top5``; with ``top``, also ``top``: that many."""
        data = {**self.best.to_dict(), "top5": [p.to_dict() for p in self.top5]}
        if top is not None:
            data["top"] = [p.to_dict() for p in self.ranked[:top]]
        return data


class Classifier:
    """One inference engine on one ONNX file, created once and reused for every batch.

    ``runtime`` is ``openvino`` or ``onnxruntime`` (:mod:`.runtimes`; None: ``IRAAS_RUNTIME``,
    default ``openvino``). ``threads`` sets the runtime's inference threads (0 lets it choose: one
    per physical core); ``streams`` is how many batches may be inferred at once from different
    threads, each on ``threads`` threads (``iraas classify`` runs one per core; onnxruntime runs
    concurrent calls anyway). ``spin`` lets onnxruntime's threads spin between runs (its default;
    off here). ``max_pixels`` bounds what :meth:`classify_bytes` will decode. The input size (224
    for Lite0, 260 for Lite2) is read from the model file's input shape.

    ``own``: the file is a model of one's own (:mod:`.own`), whose labels, input size, resize and
    normalisation it says; its graph's input and output are checked here (ConfigError naming the
    file and what is wrong), and each batch is laid out as it takes it (NCHW, float or uint8).

    :meth:`classify_bytes` decodes a batch's images on as many threads as inference uses
    (``threads``, or one per CPU when 0; Pillow releases the GIL while it decodes and resizes):
    on 2 cores that is ~10% more images/s than decoding them one after the other.
    """

    def __init__(
        self,
        model_path: Path,
        threads: int = 0,
        max_pixels: int = DEFAULT_MAX_PIXELS,
        spin: bool = False,
        runtime: str | None = None,
        streams: int = 1,
        own: OwnModel | None = None,
    ) -> None:
        self.model_path = Path(model_path)
        self.max_pixels = max_pixels
        self.runtime = get_runtime(runtime) if runtime else default_runtime()
        self.decode_threads = threads if threads > 0 else min(os.cpu_count() or 1, 8)
        self._decoders: ThreadPoolExecutor | None = None
        try:
            if self.runtime == "openvino":
                self._engine: Engine = OpenVinoEngine(self.model_path, threads, streams)
            else:
                self._engine = OnnxRuntimeEngine(self.model_path, threads, spin)
        except ModelUnavailableError:
            raise
        except Exception as exc:
            if own is None:  # a built-in file is this project's to get right: its error as it is
                raise
            raise runtime_refusal(own, f"{self.runtime} cannot load it", exc) from exc
        # What turns a batch of uint8 pixels (N, side, side, 3) into the model's input: nothing for the
        # built-in files, which take those pixels as they are.
        self._to_input: Callable[[np.ndarray], np.ndarray] | None = None
        self._labels: Sequence[Label]
        if own is None:
            self.image_size = self._engine.image_size
            self.resize = resize_for(self.image_size)
            self._labels = imagenet_labels()
        else:
            self.image_size, self.resize = own.input_size, own.resize
            self._labels = [Label(index=i, wnid=None, name=name) for i, name in enumerate(own.labels)]
            if check_signature(own, *self._engine.describe()) == "uint8":
                self._to_input = to_nchw_uint8
            else:
                mean, std = own.mean, own.std
                self._to_input = lambda pixels: to_nchw_float(pixels, mean, std)
        # The first run allocates buffers and picks kernels; pay for it now, not on a request.
        warm_up = np.zeros((1, self.image_size, self.image_size, 3), dtype=np.uint8)
        if own is None:
            self._run(warm_up)
            return
        try:
            scores = self._run(warm_up)
        except Exception as exc:  # what the graph did not say (a channel count, a shape inside it)
            raise runtime_refusal(own, f"its first run, on 1 x 3 x {self.image_size} x {self.image_size} pixels, failed",
                                  exc) from exc
        if scores.shape[1] != len(self._labels):  # an output whose size only a run tells
            raise ConfigError(label_count_mismatch(own, scores.shape[1]))

    def classify_images(self, images: Sequence[Image.Image]) -> list[Classification]:
        """Classify decoded images in one batched inference, in input order."""
        return self._classify_arrays([preprocess(img, crop=self.image_size, resize=self.resize) for img in images])

    def prepare(self, data: bytes) -> np.ndarray:
        """Decode and preprocess one encoded image into the network's input; raises ImageError.

        A large JPEG is decoded at reduced scale (DCT scaling), never below the side the
        preprocessing resizes to, so the result is what a full decode would give up to filtering.
        """
        return crop_and_resize(decode_pixels(data, self.max_pixels, self.resize), self.image_size, self.resize)

    def classify_bytes(self, blobs: Sequence[bytes], top: int = TOP_K) -> list[Classification | ImageError]:
        """Decode and classify encoded images; a bad image yields its ImageError in its slot.

        The good images are classified together in one batch, so one corrupt upload never fails
        the others. Each classification ranks ``top`` predictions (at least TOP_K, at most MAX_TOP).
        """
        results: list[Classification | ImageError | None] = [None] * len(blobs)
        arrays: list[np.ndarray] = []
        slots: list[int] = []
        # Keep only the small tensors: a batch of full-size decoded photos could be GBs.
        if len(blobs) > 1 and self.decode_threads > 1:
            if self._decoders is None:
                self._decoders = ThreadPoolExecutor(self.decode_threads, thread_name_prefix="decode")
            prepared = list(self._decoders.map(self._prepare_or_error, blobs))
        else:
            prepared = [self._prepare_or_error(data) for data in blobs]
        for i, item in enumerate(prepared):
            if isinstance(item, ImageError):
                results[i] = item
            else:
                arrays.append(item)
                slots.append(i)
        for i, classification in zip(slots, self._classify_arrays(arrays, top), strict=True):
            results[i] = classification
        return [r for r in results if r is not None]  # every slot is filled by now

    def _prepare_or_error(self, data: bytes) -> np.ndarray | ImageError:
        try:
            return self.prepare(data)
        except ImageError as exc:
            return exc

    def _classify_arrays(self, arrays: Sequence[np.ndarray], top: int = TOP_K) -> list[Classification]:
        if not arrays:
            return []
        logits = self._run(batch(arrays, crop=self.image_size))
        k = min(max(top, TOP_K), MAX_TOP, logits.shape[1])
        return [self._ranked(row, k) for row in _softmax(logits)]

    def _run(self, x: np.ndarray) -> np.ndarray:
        """Logits of a (N, side, side, 3) uint8 batch, (N, classes)."""
        if self._to_input is None:
            return self._engine.run(x)
        # A model of one's own: its layout, and an output of any shape that ends in its scores.
        return self._engine.run(self._to_input(x)).reshape(len(x), -1)

    def _ranked(self, probs: np.ndarray, k: int) -> Classification:
        """The ``k`` most likely classes, most likely first (ties in class order)."""
        top = np.argpartition(-probs, k - 1)[:k]
        top = top[np.argsort(-probs[top], kind="stable")]
        return Classification(
            ranked=tuple(
                Prediction(
                    label=self._labels[i].name,
                    wnid=self._labels[i].wnid,
                    confidence=float(probs[i]),
                    index=int(i),
                )
                for i in top
            )
        )


class Engine(Protocol):
    image_size: int  # the side of a built-in file's input (N, side, side, 3)

    def run(self, x: np.ndarray) -> np.ndarray:
        """The logits of one batch; callable from several threads at once."""

    def describe(self) -> tuple[list[Tensor], list[Tensor]]:
        """The graph's inputs and outputs, as this runtime reads them."""


class OnnxRuntimeEngine:
    """onnxruntime's CPU provider on one InferenceSession (thread-safe: concurrent runs overlap)."""

    def __init__(self, model_path: Path, threads: int = 0, spin: bool = False) -> None:
        ort = _import_runtime("onnxruntime")

        options = ort.SessionOptions()
        if threads > 0:
            options.intra_op_num_threads = threads
        options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
        # onnxruntime's intra-op threads spin after each run by default, waiting for the next one.
        # Here the next thing is decoding (on the same cores) or network I/O beside other
        # processes, so spinning only takes CPU from them; it pays only for back-to-back runs,
        # which nothing here does (bench.classifier measures both: "spinning_over_sleeping").
        if not spin:
            options.add_session_config_entry("session.intra_op.allow_spinning", "0")
        self.session = ort.InferenceSession(str(model_path), sess_options=options, providers=["CPUExecutionProvider"])
        first_input = self.session.get_inputs()[0]
        self.image_size = _side(first_input.shape)
        # The graph's own names: files.INPUT_NAME and OUTPUT_NAME for the built-in files, anything for an own model.
        self._input_name, self._output_names = first_input.name, [self.session.get_outputs()[0].name]

    def run(self, x: np.ndarray) -> np.ndarray:
        (logits,) = self.session.run(self._output_names, {self._input_name: x})
        return logits

    def describe(self) -> tuple[list[Tensor], list[Tensor]]:
        def tensor(arg: Any) -> Tensor:
            dtype = _ORT_TYPES.get(arg.type, arg.type)
            shape = None if arg.shape is None else tuple(d if isinstance(d, int) else None for d in arg.shape)
            return Tensor(arg.name, dtype, shape)

        return [tensor(a) for a in self.session.get_inputs()], [tensor(a) for a in self.session.get_outputs()]


class OpenVinoEngine:
    """OpenVINO's CPU plugin on the same ONNX file, compiled once for ``streams`` concurrent batches.

    Each calling thread gets its own infer request (a request runs one batch at a time); with the
    LATENCY hint and one stream a batch uses every inference thread, with ``streams`` > 1 (the
    THROUGHPUT hint) each of that many batches gets ``threads`` threads of its own.
    """

    def __init__(self, model_path: Path, threads: int = 0, streams: int = 1) -> None:
        ov = _import_runtime("openvino")

        config: dict[str, Any] = {
            "PERFORMANCE_HINT": "LATENCY" if streams <= 1 else "THROUGHPUT",
            # Float layers in float32, as the file says: on a CPU with AMX OpenVINO would run them
            # in bfloat16 by default, which changes the float models' answers (and little for int8).
            "INFERENCE_PRECISION_HINT": "f32",
        }
        if streams > 1:
            config["NUM_STREAMS"] = streams
        if threads > 0:
            config["INFERENCE_NUM_THREADS"] = threads * max(1, streams)
        core = ov.Core()
        cache = model_path.parent / OPENVINO_CACHE
        # The compiled model, kept beside the file where it can be (keyed by OpenVINO on the file,
        # the config and the CPU), so that a start loads it instead of compiling it again. An entry
        # another process is still writing (OpenVINO writes them in place) can fail to load: then
        # compile without the cache.
        cached = {**config, "CACHE_DIR": str(cache)} if cache.is_dir() or os.access(model_path.parent, os.W_OK) else None
        try:
            self.model = core.compile_model(str(model_path), "CPU", cached or config)
        except RuntimeError:
            if cached is None:
                raise
            self.model = core.compile_model(str(model_path), "CPU", config)
        shape = self.model.input(0).get_partial_shape()
        self.image_size = _side([dim.get_length() if dim.is_static else None for dim in shape])
        self._local = threading.local()

    def describe(self) -> tuple[list[Tensor], list[Tensor]]:
        def tensor(port: Any, i: int) -> Tensor:
            names = port.get_names()
            dtype = port.get_element_type().get_type_name()
            shape = port.get_partial_shape()
            dims = None if shape.rank.is_dynamic else tuple(d.get_length() if d.is_static else None for d in shape)
            return Tensor(min(names) if names else f"#{i}", _OPENVINO_TYPES.get(dtype, dtype), dims)

        return ([tensor(p, i) for i, p in enumerate(self.model.inputs)],
                [tensor(p, i) for i, p in enumerate(self.model.outputs)])

    def run(self, x: np.ndarray) -> np.ndarray:
        request = getattr(self._local, "request", None)
        if request is None:
            request = self._local.request = self.model.create_infer_request()
        # share_inputs: the batch is read in place; the logits are copied out of the request's buffer,
        # which its next batch overwrites.
        return np.array(request.infer({0: x}, share_inputs=True)[0])


# The runtimes' names for element types, as numpy's (what own.check_signature reads).
_ORT_TYPES = {"tensor(float)": "float32", "tensor(uint8)": "uint8", "tensor(float16)": "float16",
              "tensor(double)": "float64", "tensor(int8)": "int8", "tensor(int32)": "int32", "tensor(int64)": "int64"}
_OPENVINO_TYPES = {"f32": "float32", "u8": "uint8", "f16": "float16", "f64": "float64", "i8": "int8",
                   "i32": "int32", "i64": "int64"}


def _import_runtime(name: str) -> Any:
    """The runtime's module; :class:`ModelUnavailableError` saying how to get it if it is not installed."""
    import importlib

    try:
        return importlib.import_module(name)
    except ImportError as exc:
        other = next(r for r in RUNTIMES if r != name)
        raise ModelUnavailableError(
            f"IRAAS_RUNTIME={name} but {name} is not installed: pip install 'iraas[worker]', "
            f"or set IRAAS_RUNTIME={other}"
        ) from exc


def _side(shape: Sequence[Any]) -> int:
    """The square side of an (N, side, side, 3) input shape; the default crop if it is not fixed."""
    side = shape[1] if len(shape) == 4 else None
    return side if isinstance(side, int) else CROP


def _softmax(logits: np.ndarray) -> np.ndarray:
    shifted = logits - logits.max(axis=1, keepdims=True)  # avoids overflow in exp
    exp = np.exp(shifted)
    return exp / exp.sum(axis=1, keepdims=True)


def load_classifier(
    model_dir: Path,
    threads: int = 0,
    max_pixels: int = DEFAULT_MAX_PIXELS,
    progress: Callable[[str], None] = print,
    model: str | None = None,
    runtime: str | None = None,
    streams: int = 1,
) -> Classifier:
    """A :class:`Classifier` on the cached ``model`` in ``model_dir``, building it if needed.

    ``model`` is a name from :mod:`.models` or an own model's ``.onnx`` (:mod:`.own`: an absolute
    path, or a file name in ``model_dir``; its files and graph are checked, ConfigError if one is
    wrong); None means ``IRAAS_MODEL`` (checked by :func:`.models.default_model`; default
    ``lite0-int8``); ``runtime`` likewise from :mod:`.runtimes` (``IRAAS_RUNTIME``, default
    ``openvino``). ``progress`` receives the build's progress lines (only printed when a build
    happens, or when int8 falls back to float).
    """
    name = default_model() if model is None else check_model_name(model)
    if is_own_model(name):
        own = load_own_model(own_model_path(name, model_dir))
        return Classifier(own.path, threads=threads, max_pixels=max_pixels, runtime=runtime, streams=streams, own=own)
    model_path = ensure_model(model_dir, progress=progress, model=model)
    return Classifier(model_path, threads=threads, max_pixels=max_pixels, runtime=runtime, streams=streams)
