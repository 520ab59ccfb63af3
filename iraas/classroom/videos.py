"""Videos uploaded over HTTP: each its caller's, under a key the service makes, with the user's name kept.

:func:`store_video` puts the video at ``videos/<owner>/<id>.<ext>`` (``iraas.classroom.keys``) with
the user's file name in its metadata; the face function copies that metadata onto the CSV
(:func:`name_metadata_of`, in ``pipeline.process_video``); :func:`find_csv` reads
``videos/<owner>/<id>.csv`` back for the same owner only, with the name the user sees it under.
:func:`list_videos` lists one owner's videos (``GET /v1/videos``), or every video in the bucket (the
operator's view, ``iraas videos list``); :func:`find_outputs` reads a video's CSV and attendance
report by the video's key (the operator's view, ``iraas videos show``).

S3 metadata is ASCII, so the name is stored as base64url of its UTF-8, as an enrolment's student is
(``iraas.classroom.enrolments``): at most 1,360 characters for a 255-character name.

Only boto3 here: the web tier imports this module.
"""

from __future__ import annotations

import json
import posixpath
import re
import unicodedata
import urllib.parse
from collections.abc import Mapping
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import UTC
from typing import Any

from iraas import aws
from iraas.classroom.keys import (
    VIDEO_PREFIX,
    attendance_json_key,
    csv_key,
    is_video_key,
    new_video_id,
    owned_attendance_key,
    owned_crop_key,
    owned_csv_key,
    owned_video_key,
    owner_prefix,
)
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
    RFC 6266 ``filename*`` with the UTF-8 name when the plain one had to change. Control and format
    characters are left out of both: a right-to-left override (U+202E) would make ``exe.csv`` of
    ``\u202evsc.exe``, and the user's name is shown, not trusted."""
    file_name = "".join(c for c in file_name if unicodedata.category(c) not in ("Cc", "Cf")) or "download.csv"
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


# ---- listing videos ---------------------------------------------------------------------------

MAX_LISTED_VIDEOS = 100  # what one listing shows at most, newest first
MAX_LIST_PAGES = 20  # ListObjectsV2 pages (1,000 keys each) read at most per bucket in one listing
NAME_THREADS = 8  # HeadObjects in flight for the names of the videos listed


@dataclass(frozen=True)
class VideoSummary:
    """A video as listed: ``video`` is what names it to its reader (the id of a caller's own upload;
    the key, in the operator's view of the whole bucket)."""

    video: str
    name: str | None  # the user's file name of an HTTP upload; None without one (an operator's upload: its key names it)
    uploaded: str  # ISO 8601, UTC
    bytes: int
    csv: bool  # the first frame's CSV is written
    attendance: bool  # the whole lecture's report is written


def list_videos(
    s3: Any, input_bucket: str, output_bucket: str, owner: str | None, limit: int = MAX_LISTED_VIDEOS,
    max_pages: int = MAX_LIST_PAGES,
) -> tuple[list[VideoSummary], bool]:
    """Up to ``limit`` videos, newest first, and whether there were more: ``owner``'s HTTP uploads
    (``videos/<owner>/``), or with ``owner`` None every video in the input bucket.

    A LIST of each bucket under the same prefix (what the output bucket holds tells which reports
    are written) and a HEAD per listed HTTP upload for its name: at most ``limit`` + 2 *
    ``max_pages`` calls. Past ``max_pages`` pages the videos listed are a subset of the newest."""
    prefix = owner_prefix(owner) if owner is not None else ""
    objects, more = _list_objects(s3, input_bucket, prefix, max_pages)
    found = sorted((o for o in objects if is_video_key(o["Key"])), key=lambda o: o["LastModified"], reverse=True)
    outputs, _ = _list_objects(s3, output_bucket, prefix, max_pages)
    written = {o["Key"] for o in outputs}
    listed = found[:limit]
    with ThreadPoolExecutor(max(1, min(NAME_THREADS, len(listed))), thread_name_prefix="video-names") as pool:
        names = list(pool.map(lambda o: _name(s3, input_bucket, o["Key"], owner is not None), listed))
    summaries = [
        VideoSummary(
            video=_video_of(o["Key"]) if owner is not None else o["Key"], name=name,
            uploaded=o["LastModified"].astimezone(UTC).isoformat(timespec="seconds").replace("+00:00", "Z"),
            bytes=int(o.get("Size", 0)), csv=csv_key(o["Key"]) in written,
            attendance=attendance_json_key(o["Key"]) in written,
        )
        for o, name in zip(listed, names, strict=True)
    ]
    return summaries, more or len(found) > limit


def _list_objects(s3: Any, bucket: str, prefix: str, max_pages: int) -> tuple[list[dict[str, Any]], bool]:
    """The objects under ``prefix`` from at most ``max_pages`` pages, and whether there were more."""
    objects: list[dict[str, Any]] = []
    kwargs: dict[str, Any] = {"Bucket": bucket, "Prefix": prefix}
    for _page in range(max_pages):
        page = s3.list_objects_v2(**kwargs)
        objects.extend(page.get("Contents", []))
        if not page.get("IsTruncated"):
            return objects, False
        kwargs["ContinuationToken"] = page["NextContinuationToken"]
    return objects, True


def _video_of(key: str) -> str:
    """The id of ``videos/<owner>/<id>.<ext>``."""
    return posixpath.splitext(key.rsplit("/", 1)[-1])[0]


def _name(s3: Any, bucket: str, key: str, owned: bool) -> str | None:
    """The user's file name of an HTTP upload (from its metadata); None for an operator's upload."""
    if not owned and not key.startswith(VIDEO_PREFIX):
        return None
    found = _head(s3, bucket, key)
    return None if found is None else name_of(found.get("Metadata") or {})


def _head(s3: Any, bucket: str, key: str) -> dict[str, Any] | None:
    try:
        found: dict[str, Any] = s3.head_object(Bucket=bucket, Key=key)
    except Exception as exc:
        if aws.is_not_found(exc):  # deleted since the listing
            return None
        raise
    return found


# ---- an operator's view of one video, by its key ------------------------------------------------


def find_outputs(s3: Any, input_bucket: str, output_bucket: str, key: str) -> tuple[FoundCsv | None, dict[str, Any] | None]:
    """The CSV and the attendance report of the video at ``key`` (either None while not written);
    None, None if there is no such video and nothing was written for it."""
    if not is_video_key(key):
        return None, None
    found = _get(s3, output_bucket, csv_key(key))
    report_object = _get(s3, output_bucket, attendance_json_key(key))
    report: dict[str, Any] | None = json.loads(report_object["Body"].read()) if report_object else None
    csv = None
    if found is not None:
        name = name_of(found.get("Metadata") or {}) or key
        csv = FoundCsv(found["Body"].read().decode(), csv_file_name(name, _video_of(key)))
    return csv, report


def video_exists(s3: Any, bucket: str, key: str) -> bool:
    return is_video_key(key) and _head(s3, bucket, key) is not None
