"""A real dlib engine that also records the size of every image its detector was given, so a test can
count detections and check the pixel cap without standing in for the detector."""

from __future__ import annotations

from typing import Any

import numpy as np

from iraas.classroom.engines.dlib import DlibEngine


class RecordingEngine(DlibEngine):
    """dlib's detector and descriptors, unchanged; ``shapes`` lists (height, width) of each image the
    detector scanned (every detection goes through ``_detect``: a frame, a photo, a scene's sample)."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.shapes: list[tuple[int, int]] = []

    def _detect(self, rgb: np.ndarray, scene: Any = None) -> Any:
        height, width = rgb.shape[:2]
        self.shapes.append((height, width))
        return super()._detect(rgb, scene)

    def largest(self) -> int:
        """The most pixels the detector was given at once (0: it never ran)."""
        return max((h * w for h, w in self.shapes), default=0)
