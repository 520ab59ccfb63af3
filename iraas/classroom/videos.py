"""Videos uploaded over HTTP: each its caller's, under a key the service makes, with the user's name kept.

:func:`store_video` puts the video at ``videos/<owner>/<id>.<ext>`` (``iraas.classroom.keys``) with
the user's file name in its metadata; the face function copies that metadata onto the CSV
(:func:`name_metadata_of`, in ``pipeline.process_video``); :func:`find_csv` reads
``videos/<owner>/<id>.csv`` back for the same owner only, with the name the user sees it under.

S3 metadata is ASCII, so the name is stored as base64url of its UTF-8, as an enrolment's student is
(``iraas.classroom.enrolments``): at most 1,360 characters for a 255-character name.

Only boto3 here: the web tier imports this module.
"""

from __future__ import annotations

import json
import posixpath
import re
import urllib.parse
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from iraas import aws
from iraas.classroom.keys import new_video_id, owned_attendance_key, owned_crop_key, owned_csv_key, owned_video_key
from iraas.names import from_metadata, to_metadata

NAME_METADATA = "name"  # x-amz-meta-name: base64url(UTF-8 of the user's file name)
MAX_VIDEO_NAME_CHARS = 255
_NOT_QUOTABLE = re.compile(r'[^\x20-\x7e]|["\\]')


@dataclass(frozen=True)
class FoundCsv:
    text: str
    file_name: str  # what the user sees it as: <stem of their video's name>.csv


def name_metadata(name: str) -> dict[str, str]:
    return {NAME_METADATA: to_metadata(name)}


def name_of(metadata: Mapping[str, str]) -> str | None:
    """The user's file name in an object's metadata, None if it has none (an operator's upload)."""
    return from_metadata(metadata.get(NAME_METADATA))


def name_metadata_of(metadata: Mapping[str, str]) -> dict[str, str]:
    """What of a video's metadata its CSV carries too: the user's name, when it is a valid one."""
    name = name_of(metadata)
    return name_metadata(name) if name is not None else {}


def csv_file_name(name: str | None, video_id: str) -> str:
    """``<stem>.csv`` for the user's ``<folders>/<stem>.<ext>``; ``<id>.csv`` for a video without a name."""
    base = (name or "").replace("\\", "/").split("/")[-1]
    stem = posixpath.splitext(base)[0]
    return f"{stem or video_id}.csv"


def content_disposition(file_name: str) -> str:
    """``attachment; filename="..."`` (printable ASCII, quotes and backslashes as ``_``), plus the
    RFC 6266 ``filename*`` with the exact UTF-8 name when the plain one had to change."""
    plain = _NOT_QUOTABLE.sub("_", file_name)
    header = f'attachment; filename="{plain}"'
    if plain != file_name:
        header += "; filename*=UTF-8''" + urllib.parse.quote(file_name, safe="")
    return header


def store_video(s3: Any, bucket: str, owner: str, name: str | None, extension: str, body: bytes) -> str:
    """Put a video at a fresh ``videos/<owner>/<id><extension>``; returns the video's id."""
    video_id = new_video_id()
    s3.put_object(
        Bucket=bucket, Key=owned_video_key(owner, video_id, extension), Body=body,
        Metadata=name_metadata(name) if name else {},
    )
    return video_id


def find_csv(s3: Any, bucket: str, owner: str, video_id: str) -> FoundCsv | None:
    """The CSV of ``owner``'s video ``video_id``, None while there is none (or it is another's)."""
    try:
        found = s3.get_object(Bucket=bucket, Key=owned_csv_key(owner, video_id))
    except Exception as exc:
        if aws.is_not_found(exc):
            return None
        raise
    text: str = found["Body"].read().decode()
    return FoundCsv(text, csv_file_name(name_of(found.get("Metadata") or {}), video_id))


def find_attendance(s3: Any, bucket: str, owner: str, video_id: str) -> dict[str, Any] | None:
    """The attendance report of ``owner``'s video ``video_id``, None while there is none (or it is another's)."""
    found = _get(s3, bucket, owned_attendance_key(owner, video_id))
    if found is None:
        return None
    report: dict[str, Any] = json.loads(found["Body"].read())
    return report


def find_unknown_face(s3: Any, bucket: str, owner: str, video_id: str, index: int) -> bytes | None:
    """The crop of the ``index``-th unknown person of ``owner``'s video (JPEG), None if there is none."""
    found = _get(s3, bucket, owned_crop_key(owner, video_id, index))
    return None if found is None else bytes(found["Body"].read())


def _get(s3: Any, bucket: str, key: str) -> dict[str, Any] | None:
    try:
        found: dict[str, Any] = s3.get_object(Bucket=bucket, Key=key)
    except Exception as exc:
        if aws.is_not_found(exc):
            return None
        raise
    return found
