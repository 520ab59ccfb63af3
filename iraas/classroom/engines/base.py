"""One interface for face engines: find every face in an RGB frame and describe it.

Engines are plugins (``dlib`` by default, ``facenet`` optional), registered by name in
``iraas.classroom.engines``; the pipeline, the gallery and the CLI only see :class:`FaceEngine`.

Detection costs in proportion to the pixels it looks at, so the callers that serve untrusted input
(:meth:`FaceEngine.faces` and :class:`Scene` with ``max_pixels``: the first frame, a lecture's
samples, an enrolment photo) hand the detector the frame scaled down to at most that many pixels
(``IRAAS_MAX_DETECT_PIXELS``), map its boxes back to the frame, and describe the faces on the
frame's own pixels: a 40-megapixel frame is searched as a 4K one, and recognised as well as before.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, ClassVar

if TYPE_CHECKING:
    from collections.abc import Callable

    import numpy as np

    from iraas.classroom.engines import EngineSpec


class EngineUnavailable(RuntimeError):
    """The engine's packages or weights are not installed; the message says how to get them."""


@dataclass(frozen=True)
class Box:
    """A face's box in frame pixels (face_recognition's (top, right, bottom, left) order)."""

    top: int
    right: int
    bottom: int
    left: int

    @property
    def width(self) -> int:
        return self.right - self.left

    @property
    def height(self) -> int:
        return self.bottom - self.top

    def scaled(self, x: float, y: float, height: int, width: int) -> Box:
        """This box with its columns times ``x`` and its rows times ``y``, within a ``height`` x
        ``width`` frame."""
        return Box(
            top=max(0, round(self.top * y)), right=min(width, round(self.right * x)),
            bottom=min(height, round(self.bottom * y)), left=max(0, round(self.left * x)),
        )


def within_pixels(rgb: np.ndarray, max_pixels: int | None) -> np.ndarray:
    """``rgb`` scaled down (keeping its aspect) to at most ``max_pixels`` pixels; the frame itself,
    not copied, when it is within the cap or there is none."""
    height, width = rgb.shape[:2]
    if not max_pixels or height * width <= max_pixels:
        return rgb
    import math

    import cv2

    scale = math.sqrt(max_pixels / (height * width))
    size = (max(1, math.floor(width * scale)), max(1, math.floor(height * scale)))  # floors: within the cap
    return cv2.resize(rgb, size, interpolation=cv2.INTER_AREA)


def detect_within(detect: Callable[[np.ndarray], list[Box]], rgb: np.ndarray, max_pixels: int | None) -> list[Box]:
    """``detect`` run on ``rgb`` scaled to at most ``max_pixels``; its boxes in ``rgb``'s pixels."""
    small = within_pixels(rgb, max_pixels)
    boxes = detect(small)
    if small is rgb:
        return boxes
    (height, width), (small_height, small_width) = rgb.shape[:2], small.shape[:2]
    return [box.scaled(width / small_width, height / small_height, height, width) for box in boxes]


@dataclass(frozen=True)
class Face:
    box: Box
    descriptor: np.ndarray  # float32, engine.descriptor_size values


class FaceEngine(ABC):
    """Detects faces and computes descriptors; distances below a tolerance mean one person."""

    spec: ClassVar[EngineSpec]  # its entry in the registry: name, descriptor size, tolerance

    @classmethod
    def create(cls, weights: str | Path | None = None) -> FaceEngine:
        """A new engine; ``weights`` is a local file for engines that need one."""
        return cls()

    @property
    def name(self) -> str:
        return self.spec.name

    @property
    def descriptor_size(self) -> int:
        return self.spec.descriptor_size

    @abstractmethod
    def detect(self, rgb: np.ndarray) -> list[Box]:
        """Every face box in an RGB uint8 frame (H, W, 3)."""

    @abstractmethod
    def describe(self, rgb: np.ndarray, boxes: list[Box]) -> list[np.ndarray]:
        """One descriptor per box."""

    def scene(self, max_pixels: int | None = None) -> Scene:
        """A detector for the frames of one fixed camera in order (a lecture's samples), each looked
        at scaled to at most ``max_pixels``. This one detects each frame afresh; an engine may reuse
        what it found where the picture is unchanged."""
        return Scene(self, max_pixels)

    def faces(self, rgb: np.ndarray, max_pixels: int | None = None) -> list[Face]:
        """Every face in the frame: found in the frame scaled to at most ``max_pixels`` (None: as
        it is), described on the frame's own pixels."""
        boxes = detect_within(self.detect, rgb, max_pixels)
        return [Face(box, d) for box, d in zip(boxes, self.describe(rgb, boxes), strict=True)]

    def warm_up(self) -> None:
        """Run once on a blank frame so that the first real video does not pay for lazy set-up."""
        import numpy as np

        self.faces(np.zeros((160, 160, 3), dtype=np.uint8))


class Scene:
    """Consecutive frames of one camera, detected by ``engine`` (see :meth:`FaceEngine.scene`), each
    scaled to at most ``max_pixels`` first (None: as they are); boxes in the frame's pixels."""

    def __init__(self, engine: FaceEngine, max_pixels: int | None = None) -> None:
        self.engine = engine
        self.max_pixels = max_pixels

    def detect(self, rgb: np.ndarray) -> list[Box]:
        return detect_within(self._detect, rgb, self.max_pixels)

    def _detect(self, rgb: np.ndarray) -> list[Box]:
        """The faces of a frame already within the cap (an engine's scene overrides this)."""
        return self.engine.detect(rgb)
