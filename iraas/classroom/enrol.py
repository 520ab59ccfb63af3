"""Enrolment: descriptors from photos or an encoding file, stored beside the student records."""

from __future__ import annotations

from collections import defaultdict
from pathlib import Path

import numpy as np

from iraas.classroom.encodings import read_encodings
from iraas.classroom.engines.base import FaceEngine
from iraas.classroom.gallery import to_bytes
from iraas.classroom.students import StudentStore


class EnrolmentError(ValueError):
    """A photo does not show exactly one face."""


def read_photo(path: str | Path) -> np.ndarray:
    """A photo as RGB uint8."""
    import cv2

    image = cv2.imread(str(path), cv2.IMREAD_COLOR)
    if image is None:
        raise EnrolmentError(f"{path}: not an image OpenCV can read")
    return np.ascontiguousarray(image[:, :, ::-1])


def descriptors_from_photos(engine: FaceEngine, photos: list[Path]) -> list[np.ndarray]:
    """One descriptor per photo; each photo must show exactly one face (whose would it be else?)."""
    out = []
    for photo in photos:
        faces = engine.faces(read_photo(photo))
        if len(faces) != 1:
            raise EnrolmentError(f"{photo}: found {len(faces)} faces; an enrolment photo must show exactly one")
        out.append(faces[0].descriptor)
    return out


def enrol_photos(store: StudentStore, engine: FaceEngine, name: str, photos: list[Path]) -> int:
    """Store the descriptors of ``name``'s photos; returns how many."""
    descriptors = descriptors_from_photos(engine, photos)
    store.add_faces(name, [to_bytes(d) for d in descriptors])
    return len(descriptors)


def import_encodings(store: StudentStore, path: Path, descriptor_size: int) -> dict[str, int]:
    """Store every (name, encoding) of a face_recognition-style file; returns counts by name.

    ``descriptor_size`` is the configured engine's: the vectors must be comparable with its own.
    """
    by_name: dict[str, list[bytes]] = defaultdict(list)
    for name, vector in read_encodings(path, descriptor_size):
        by_name[name].append(to_bytes(vector))
    for name, blobs in by_name.items():
        store.add_faces(name, blobs)
    return {name: len(blobs) for name, blobs in sorted(by_name.items())}
