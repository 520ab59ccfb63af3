"""Enrolment: descriptors from photos or an encoding file, stored beside the student records.

Photos come from the CLI (``iraas faces enroll``, files) or over HTTP (:func:`enrol_upload`, run
by the face function for each ``enrolments/<id>.<ext>`` the web tier stored; see
:mod:`iraas.classroom.enrolments`).
"""

from __future__ import annotations

from collections import defaultdict
from pathlib import Path

import numpy as np
from PIL import Image

from iraas import aws
from iraas.classroom.encodings import read_encodings
from iraas.classroom.engines import engine_for
from iraas.classroom.engines.base import FaceEngine
from iraas.classroom.enrolments import ENROLLED, FAILED, EnrolmentOutcome, student_of, write_outcome
from iraas.classroom.gallery import to_bytes
from iraas.classroom.keys import enrolment_id_of
from iraas.classroom.settings import FaceSettings
from iraas.classroom.student_store import StudentStore, student_store
from iraas.classroom.students import UnknownStudent
from iraas.media.uploads import UploadLimits
from iraas.media.validation import ImageError, decode_rgb


class EnrolmentError(ValueError):
    """A photo cannot be enrolled: OpenCV cannot read it, or it does not show exactly one face."""


class FacesFound(EnrolmentError):
    """The photo shows no face, or several."""

    def __init__(self, count: int, message: str) -> None:
        super().__init__(message)
        self.count = count


def read_photo(path: str | Path, max_pixels: int = UploadLimits.max_image_pixels) -> np.ndarray:
    """A photo as upright RGB uint8, decoded as uploaded photos are: the same formats, the pixel
    count checked from the header first, the same memory per decode (iraas.media.validation)."""
    try:
        return _rgb_array(decode_rgb(Path(path).read_bytes(), max_pixels))
    except OSError as exc:
        raise EnrolmentError(f"{path}: {exc.strerror or exc}") from None
    except ImageError as exc:
        raise EnrolmentError(f"{path}: not an image we can read ({exc.code}): {exc.message}") from None


def _rgb_array(image: Image.Image) -> np.ndarray:
    return np.ascontiguousarray(np.asarray(image, dtype=np.uint8))


def one_descriptor(
    engine: FaceEngine, rgb: np.ndarray, what: str, max_detect_pixels: int | None = FaceSettings.max_detect_pixels
) -> np.ndarray:
    """The descriptor of the one face in a photo (whose would it be else?); EnrolmentError if not one.
    The face is looked for in the photo scaled to at most ``max_detect_pixels`` and described on the
    photo's own pixels."""
    faces = engine.faces(rgb, max_detect_pixels)
    if len(faces) != 1:
        raise FacesFound(len(faces), f"{what}: found {len(faces)} faces; an enrolment photo must show exactly one")
    return faces[0].descriptor


def descriptors_from_photos(
    engine: FaceEngine, photos: list[Path], max_pixels: int = UploadLimits.max_image_pixels,
    max_detect_pixels: int | None = FaceSettings.max_detect_pixels,
) -> list[np.ndarray]:
    """One descriptor per photo; each photo must show exactly one face."""
    return [one_descriptor(engine, read_photo(photo, max_pixels), str(photo), max_detect_pixels) for photo in photos]


def enrol_photos(
    store: StudentStore, engine: FaceEngine, name: str, photos: list[Path], max_pixels: int = UploadLimits.max_image_pixels,
    max_detect_pixels: int | None = FaceSettings.max_detect_pixels,
) -> int:
    """Store the descriptors of ``name``'s photos; returns how many."""
    descriptors = descriptors_from_photos(engine, photos, max_pixels, max_detect_pixels)
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


def enrol_upload(
    settings: FaceSettings, bucket: str, key: str, engine: FaceEngine | None = None
) -> EnrolmentOutcome | None:
    """Enrol the one face of a photo stored by ``POST /v1/students/{name}/photos``; write its outcome.

    None (nothing written) for a key the web tier did not make. A bad photo (too large, not an
    image, no face or several, a student deleted meanwhile) is a "failed" outcome with the reason,
    never an exception: S3's retries are kept for real failures (throttling, an unreachable table).
    The same photo enrolled twice stores its descriptor once (a set), so a repeated event is harmless.
    """
    settings.require("video_output_bucket", "students_table")
    enrolment_id = enrolment_id_of(key)
    if enrolment_id is None:
        return None
    s3 = aws.client(settings, "s3")
    outcome = EnrolmentOutcome(enrolment=enrolment_id, student=None, status=FAILED)
    try:
        head = s3.head_object(Bucket=bucket, Key=key)
    except Exception as exc:
        if not aws.is_not_found(exc):
            raise
        head = None
    if head is None:
        outcome.error = "the photo is no longer in the bucket"
    elif (student := student_of(head.get("Metadata", {}))) is None:
        outcome.error = "the photo names no student (it was not stored by POST /v1/students/{name}/photos)"
    elif head["ContentLength"] > settings.photo_limits.max_image_bytes:  # bounded before anything is downloaded
        outcome.student = student
        outcome.error = f"the photo is {head['ContentLength']} bytes; the limit is {settings.photo_limits.max_image_bytes}"
    else:
        outcome.student = student
        data = s3.get_object(Bucket=bucket, Key=key)["Body"].read()
        try:
            # Pillow, as the web tier checked it: the pixel count is bounded before decoding, and a
            # phone photo's EXIF orientation is applied, so the face is upright for the detector.
            rgb = _rgb_array(decode_rgb(data, settings.photo_limits.max_image_pixels))
            descriptor = one_descriptor(engine or engine_for(settings), rgb, "the photo", settings.max_detect_pixels)
            student_store(settings).add_faces(student, [to_bytes(descriptor)], must_exist=True)
            outcome.status, outcome.faces = ENROLLED, 1
        except ImageError as exc:
            outcome.error = f"not an image we can read ({exc.code}): {exc.message}"
        except FacesFound as exc:
            outcome.faces, outcome.error = exc.count, str(exc)
        except UnknownStudent:
            outcome.faces, outcome.error = 1, f"there is no student named {student!r} any more"
    assert settings.video_output_bucket is not None  # require() checked it
    write_outcome(s3, settings.video_output_bucket, outcome)
    return outcome
