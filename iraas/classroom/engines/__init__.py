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
from typing import TYPE_CHECKING

from iraas.classroom.engines.base import EngineUnavailable

if TYPE_CHECKING:
    from iraas.classroom.engines.base import FaceEngine
    from iraas.classroom.settings import FaceSettings


@dataclass(frozen=True)
class EngineSpec:
    name: str
    implementation: str  # "module:Class"
    descriptor_size: int
    # Largest distance between two descriptors that still counts as the same person.
    default_tolerance: float


ENGINES: dict[str, EngineSpec] = {
    # Measured on the shared photos (`make bench-faces`): same person at most 0.52, different
    # people at least 0.63. 0.55 sits in that gap, a little stricter than face_recognition's 0.6,
    # because a false match puts the wrong student on the list.
    "dlib": EngineSpec("dlib", "iraas.classroom.engines.dlib:DlibEngine", 128, 0.55),
    # facenet-pytorch's usual threshold for its unit-length 512-d embeddings; measure it again on
    # your own gallery before relying on it.
    "facenet": EngineSpec("facenet", "iraas.classroom.engines.facenet:FacenetEngine", 512, 1.0),
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


def engine_for(settings: FaceSettings) -> FaceEngine:
    """The settings' engine, warmed up once per process (a function's cold start pays for it)."""
    return warm_engine(settings.engine, str(settings.facenet_weights) if settings.facenet_weights else None)
