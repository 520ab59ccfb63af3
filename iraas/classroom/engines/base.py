"""One interface for face engines: find every face in an RGB frame and describe it.

Engines are plugins (``dlib`` by default, ``facenet`` optional), registered by name in
``iraas.classroom.engines``; the pipeline, the gallery and the CLI only see :class:`FaceEngine`.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, ClassVar

if TYPE_CHECKING:
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

    def scene(self) -> Scene:
        """A detector for the frames of one fixed camera in order (a lecture's samples). This one
        detects each frame afresh; an engine may reuse what it found where the picture is unchanged."""
        return Scene(self)

    def faces(self, rgb: np.ndarray) -> list[Face]:
        boxes = self.detect(rgb)
        return [Face(box, d) for box, d in zip(boxes, self.describe(rgb, boxes), strict=True)]

    def warm_up(self) -> None:
        """Run once on a blank frame so that the first real video does not pay for lazy set-up."""
        import numpy as np

        self.faces(np.zeros((160, 160, 3), dtype=np.uint8))


class Scene:
    """Consecutive frames of one camera, detected by ``engine`` (see :meth:`FaceEngine.scene`)."""

    def __init__(self, engine: FaceEngine) -> None:
        self.engine = engine

    def detect(self, rgb: np.ndarray) -> list[Box]:
        return self.engine.detect(rgb)
