"""Batched ImageNet classification with onnxruntime (the worker's inference engine).

Needs ``iraas[worker]`` (numpy, onnxruntime); torch is not imported here.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import onnxruntime as ort
from PIL import Image

from iraas.media.uploads import UploadLimits
from iraas.media.validation import ImageError, decode_rgb

from .export import ensure_model
from .files import INPUT_NAME, OUTPUT_NAME
from .labels import imagenet_labels
from .preprocess import CROP, batch, preprocess, resize_for

TOP_K = 5
DEFAULT_MAX_PIXELS = UploadLimits.max_image_pixels


@dataclass(frozen=True)
class Prediction:
    label: str
    wnid: str
    confidence: float  # softmax probability, 0..1
    index: int

    def to_dict(self) -> dict:
        return {"label": self.label, "wnid": self.wnid, "confidence": round(self.confidence, 4)}


@dataclass(frozen=True)
class Classification:
    top5: tuple[Prediction, ...]  # most likely first

    @property
    def best(self) -> Prediction:
        return self.top5[0]

    def to_dict(self) -> dict:
        return {**self.best.to_dict(), "top5": [p.to_dict() for p in self.top5]}


class Classifier:
    """One onnxruntime session, created once and reused for every batch.

    ``threads`` sets onnxruntime's intra-op thread count (0 lets onnxruntime choose: one per
    physical core); ``spin`` lets those threads spin between runs (onnxruntime's default; off
    here). ``max_pixels`` bounds what :meth:`classify_bytes` will decode. The input
    size (224 for Lite0, 260 for Lite2) is read from the model file's input shape.

    :meth:`classify_bytes` decodes a batch's images on as many threads as inference uses
    (``threads``, or one per CPU when 0; Pillow releases the GIL while it decodes and resizes):
    on 2 cores that is ~10% more images/s than decoding them one after the other.
    """

    def __init__(
        self, model_path: Path, threads: int = 0, max_pixels: int = DEFAULT_MAX_PIXELS, spin: bool = False
    ) -> None:
        self.model_path = Path(model_path)
        self.max_pixels = max_pixels
        self.decode_threads = threads if threads > 0 else min(os.cpu_count() or 1, 8)
        self._decoders: ThreadPoolExecutor | None = None
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
        self._session = ort.InferenceSession(
            str(self.model_path), sess_options=options, providers=["CPUExecutionProvider"]
        )
        side = self._session.get_inputs()[0].shape[-1]
        self.image_size = side if isinstance(side, int) else CROP
        self._labels = imagenet_labels()
        # The first run allocates buffers and picks kernels; pay for it now, not on a request.
        self._run(np.zeros((1, 3, self.image_size, self.image_size), dtype=np.float32))

    def classify_images(self, images: Sequence[Image.Image]) -> list[Classification]:
        """Classify decoded images in one batched inference, in input order."""
        return self._classify_arrays([preprocess(img, crop=self.image_size) for img in images])

    def prepare(self, data: bytes) -> np.ndarray:
        """Decode and preprocess one encoded image into the network's input; raises ImageError.

        A large JPEG is decoded at reduced scale (DCT scaling), never below the side the
        preprocessing resizes to, so the result is what a full decode would give up to filtering.
        """
        img = decode_rgb(data, self.max_pixels, min_side=resize_for(self.image_size))
        return preprocess(img, crop=self.image_size)

    def classify_bytes(self, blobs: Sequence[bytes]) -> list[Classification | ImageError]:
        """Decode and classify encoded images; a bad image yields its ImageError in its slot.

        The good images are classified together in one batch, so one corrupt upload never fails
        the others.
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
        for i, classification in zip(slots, self._classify_arrays(arrays), strict=True):
            results[i] = classification
        return [r for r in results if r is not None]  # every slot is filled by now

    def _prepare_or_error(self, data: bytes) -> np.ndarray | ImageError:
        try:
            return self.prepare(data)
        except ImageError as exc:
            return exc

    def _classify_arrays(self, arrays: Sequence[np.ndarray]) -> list[Classification]:
        if not arrays:
            return []
        logits = self._run(batch(arrays))
        return [self._top5(row) for row in _softmax(logits)]

    def _run(self, x: np.ndarray) -> np.ndarray:
        (logits,) = self._session.run([OUTPUT_NAME], {INPUT_NAME: x})
        return logits

    def _top5(self, probs: np.ndarray) -> Classification:
        top = np.argpartition(-probs, TOP_K)[:TOP_K]
        top = top[np.argsort(-probs[top], kind="stable")]
        return Classification(
            top5=tuple(
                Prediction(
                    label=self._labels[i].name,
                    wnid=self._labels[i].wnid,
                    confidence=float(probs[i]),
                    index=int(i),
                )
                for i in top
            )
        )


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
) -> Classifier:
    """A :class:`Classifier` on the cached ``model`` in ``model_dir``, building it if needed.

    ``model`` is a name from :mod:`.models`; None means ``IRAAS_MODEL`` (checked by
    :func:`.models.default_model`; default ``lite0-int8``). ``progress`` receives the build's
    progress lines (only printed when a build happens, or when int8 falls back to float).
    """
    model_path = ensure_model(model_dir, progress=progress, model=model)
    return Classifier(model_path, threads=threads, max_pixels=max_pixels)
