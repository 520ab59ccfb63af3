"""Face enrolment over HTTP: a photo in the video input bucket, its outcome in the output bucket.

The web tier stores the photo under a key of its own making (:func:`store_photo`, answering with the
enrolment's id) and later reads the outcome (:func:`find_outcome`). The photo's ObjectCreated event
starts the face function, which enrols it (:func:`iraas.classroom.enrol.enrol_upload`) and writes
the outcome with :func:`write_outcome`: ``{"enrolment", "student", "status", "faces", "error"}``.

The student's name travels in the photo's own metadata, so that it arrives with the photo in one
write (a sidecar object would be a second event, and could be read before it exists). S3 metadata
is ASCII, so the name is stored as base64url of its UTF-8 (at most 1,068 characters for a 200-
character name, well within S3's 2 KB of metadata).

Only boto3 here: the web tier imports this module.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import asdict, dataclass
from typing import Any

from iraas import aws
from iraas.classroom.keys import enrolment_outcome_key, enrolment_photo_key, new_enrolment_id
from iraas.names import from_metadata, to_metadata

PENDING = "pending"
ENROLLED = "enrolled"
FAILED = "failed"
STUDENT_METADATA = "student"  # x-amz-meta-student: base64url(UTF-8 name)


@dataclass
class EnrolmentOutcome:
    """What became of one photo; ``faces`` is how many faces the photo showed."""

    enrolment: str
    student: str | None
    status: str  # ENROLLED or FAILED
    faces: int = 0
    error: str | None = None

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def student_metadata(name: str) -> dict[str, str]:
    return {STUDENT_METADATA: to_metadata(name)}


def student_of(metadata: Mapping[str, str]) -> str | None:
    """The student a photo's metadata names, None if it names none (the photo was not ours)."""
    return from_metadata(metadata.get(STUDENT_METADATA))


def store_photo(s3: Any, bucket: str, student: str, data: bytes, image_format: str, mime: str) -> str:
    """Put a checked photo at a fresh ``enrolments/<id>.<ext>``; returns the enrolment's id."""
    enrolment_id = new_enrolment_id()
    s3.put_object(
        Bucket=bucket, Key=enrolment_photo_key(enrolment_id, image_format), Body=data,
        ContentType=mime, Metadata=student_metadata(student),
    )
    return enrolment_id


def write_outcome(s3: Any, bucket: str, outcome: EnrolmentOutcome) -> None:
    """Write (or, for a repeated event, overwrite) ``enrolments/<id>.json``."""
    s3.put_object(
        Bucket=bucket, Key=enrolment_outcome_key(outcome.enrolment),
        Body=json.dumps(outcome.to_dict()).encode(), ContentType="application/json",
    )


def find_outcome(s3: Any, bucket: str, enrolment_id: str) -> dict[str, Any] | None:
    """The outcome of an enrolment, None while there is none."""
    try:
        body = s3.get_object(Bucket=bucket, Key=enrolment_outcome_key(enrolment_id))["Body"]
    except Exception as exc:
        if aws.is_not_found(exc):
            return None
        raise
    outcome: dict[str, Any] = json.loads(body.read())
    return outcome
