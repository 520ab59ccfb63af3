"""Batched ImageNet classification with onnxruntime (the worker's inference engine).

Needs ``iraas[worker]`` (numpy, onnxruntime); torch is not imported here.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import onnxruntime as ort
from PIL import Image

from iraas.config import Limits
from iraas.images.validation import ImageError, decode_rgb

from .export import INPUT_NAME, OUTPUT_NAME, ensure_model
from .labels import imagenet_labels
from .preprocess import INPUT_SHAPE, batch, preprocess

TOP_K = 5
DEFAULT_MAX_PIXELS = Limits.max_image_pixels


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
    physical core). ``max_pixels`` bounds what :meth:`classify_bytes` will decode.
    """

    def __init__(
        self, model_path: Path, threads: int = 0, max_pixels: int = DEFAULT_MAX_PIXELS
    ) -> None:
        self.model_path = Path(model_path)
        self.max_pixels = max_pixels
        options = ort.SessionOptions()
        if threads > 0:
            options.intra_op_num_threads = threads
        options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
        self._session = ort.InferenceSession(
            str(self.model_path), sess_options=options, providers=["CPUExecutionProvider"]
        )
        self._labels = imagenet_labels()
        # The first run allocates buffers and picks kernels; pay for it now, not on a request.
        self._run(np.zeros((1, *INPUT_SHAPE), dtype=np.float32))

    def classify_images(self, images: Sequence[Image.Image]) -> list[Classification]:
        """Classify decoded images in one batched inference, in input order."""
        return self._classify_arrays([preprocess(img) for img in images])

    def classify_bytes(self, blobs: Sequence[bytes]) -> list[Classification | ImageError]:
        """Decode and classify encoded images; a bad image yields its ImageError in its slot.

        The good images are classified together in one batch, so one corrupt upload never fails
        the others.
        """
        results: list[Classification | ImageError | None] = [None] * len(blobs)
        arrays: list[np.ndarray] = []
        slots: list[int] = []
        for i, data in enumerate(blobs):
            try:
                img = decode_rgb(data, self.max_pixels)
            except ImageError as exc:
                results[i] = exc
                continue
            # Keep only the small tensor: a batch of full-size decoded photos could be GBs.
            arrays.append(preprocess(img))
            slots.append(i)
        for i, classification in zip(slots, self._classify_arrays(arrays), strict=True):
            results[i] = classification
        return [r for r in results if r is not None]  # every slot is filled by now

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
) -> Classifier:
    """A :class:`Classifier` on the cached model in ``model_dir``, building it if needed.

    ``progress`` receives the build's progress lines (only printed when a build happens).
    """
    model_path = ensure_model(model_dir, progress=progress)
    return Classifier(model_path, threads=threads, max_pixels=max_pixels)
