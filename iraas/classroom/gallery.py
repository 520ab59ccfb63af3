"""Enrolled faces in memory, and matching a descriptor to the nearest enrolled person."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass

import numpy as np

DESCRIPTOR_DTYPE = np.dtype("<f4")  # stored as little-endian float32: 512 bytes per descriptor


def to_bytes(descriptor: np.ndarray) -> bytes:
    return np.asarray(descriptor, dtype=DESCRIPTOR_DTYPE).tobytes()


def from_bytes(blob: bytes) -> np.ndarray:
    return np.frombuffer(blob, dtype=DESCRIPTOR_DTYPE)


@dataclass(frozen=True)
class Match:
    name: str | None  # None: nobody enrolled is near enough, or two people are about as near
    distance: float  # to the nearest enrolled descriptor
    runner_up: float = float("inf")  # to the nearest descriptor of anyone else (the second-nearest person)


class Gallery:
    """Descriptors by person; a face matches the person with the nearest descriptor when that one
    is within the tolerance and clearly nearer than anyone else (the margin)."""

    def __init__(self, names: list[str], descriptors: np.ndarray) -> None:
        self.names = names  # one per row of descriptors
        self.descriptors = descriptors.reshape(len(names), -1) if names else descriptors

    @classmethod
    def from_blobs(cls, faces: Mapping[str, Iterable[bytes]], descriptor_size: int) -> Gallery:
        """The gallery of stored descriptors; ``descriptor_size`` is the engine's (128 for dlib)."""
        names: list[str] = []
        rows: list[np.ndarray] = []
        for name, blobs in sorted(faces.items()):
            for blob in blobs:
                names.append(name)
                rows.append(from_bytes(blob))
        return cls(names, np.stack(rows) if rows else np.zeros((0, descriptor_size), DESCRIPTOR_DTYPE))

    def __len__(self) -> int:
        return len(self.names)

    @property
    def people(self) -> set[str]:
        return set(self.names)

    def match(self, descriptor: np.ndarray, tolerance: float, margin: float = 1.0) -> Match:
        """The nearest person, if at most ``tolerance`` away and at most ``margin`` times the
        distance to the second-nearest person (1.0: no margin; 0.85: at least 15% nearer)."""
        if not self.names:
            return Match(None, float("inf"))
        distances = np.linalg.norm(self.descriptors - descriptor[None, :], axis=1)
        best = int(np.argmin(distances))
        name, distance = self.names[best], float(distances[best])
        others = [float(d) for n, d in zip(self.names, distances, strict=True) if n != name]
        runner_up = min(others, default=float("inf"))
        matched = distance <= tolerance and distance <= margin * runner_up
        return Match(name if matched else None, distance, runner_up)
