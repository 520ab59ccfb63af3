"""The face engines, by name: what each one's descriptors look like and how close means "same".

The registry is light (no engine is imported until one is loaded), so the settings check and the
loader read the same table. Each engine owns its threshold, as CompreFace's plugins do: a 512-d
facenet descriptor lives on another scale than a 128-d dlib one.
"""

from __future__ import annotations

import importlib
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import TYPE_CHECKING, Protocol

from iraas.classroom.engines.base import EngineUnavailable

if TYPE_CHECKING:
    from iraas.classroom.engines.base import FaceEngine


class EngineChoice(Protocol):
    """Which engine to run, as the classroom settings say it (``FaceSettings``)."""

    @property
    def engine(self) -> str: ...

    @property
    def facenet_weights(self) -> Path | None: ...


@dataclass(frozen=True)
class EngineSpec:
    name: str
    implementation: str  # "module:Class"
    descriptor_size: int
    # Largest distance between two descriptors that still counts as the same person.
    default_tolerance: float
    # The nearest person must be at most this times as far as the second-nearest (1.0: no margin).
    default_margin: float = 1.0


ENGINES: dict[str, EngineSpec] = {
    # Measured (`make bench-faces`, docs/classroom.md "Tolerance"): faces found in classroom video frames are at
    # most 0.53 from their own person's other photos, nearest wrong person at least 0.68, strangers
    # at least 0.65; a real course's encodings matched at up to 0.562 (wrong person 0.63+). 0.6 is
    # dlib's published threshold and leaves that headroom. Margin: own / second-nearest person at
    # most 0.71 here (0.89 in the course), strangers 0.90-1.0: a face must be 8% nearer.
    "dlib": EngineSpec("dlib", "iraas.classroom.engines.dlib:DlibEngine", 128, 0.6, 0.92),
    # facenet-pytorch's usual threshold for its unit-length 512-d embeddings; measure it again on
    # your own gallery before relying on it (and its margin: none until measured).
    "facenet": EngineSpec("facenet", "iraas.classroom.engines.facenet:FacenetEngine", 512, 1.0, 1.0),
}


def spec_for(name: str) -> EngineSpec:
    try:
        return ENGINES[name]
    except KeyError:
        raise EngineUnavailable(f"unknown face engine {name!r}; choose one of {', '.join(ENGINES)}") from None


def load_engine(name: str = "dlib", weights: str | Path | None = None) -> FaceEngine:
    """A new engine by name (``facenet`` needs facenet-pytorch and its ``weights`` file)."""
    module, _, cls = spec_for(name).implementation.partition(":")
    engine: FaceEngine = getattr(importlib.import_module(module), cls).create(weights)
    return engine


@cache
def warm_engine(name: str, weights: str | None = None) -> FaceEngine:
    """The named engine, loaded and warmed up once per process."""
    engine = load_engine(name, weights)
    engine.warm_up()
    return engine


def engine_for(settings: EngineChoice) -> FaceEngine:
    """The settings' engine, warmed up once per process (a function's cold start pays for it)."""
    return warm_engine(settings.engine, str(settings.facenet_weights) if settings.facenet_weights else None)
