"""Object keys of the face pipeline, built only here.

A video's CSV has the video's key with its extension replaced by ``.csv``, in the output bucket:
``Class 1/monday.mp4`` -> ``Class 1/monday.csv``. The key derives from the video's key alone, so a
repeated S3 event overwrites the same CSV instead of adding one.

Both video buckets reserve one folder, ``enrolments/``, for the face photos enrolled over HTTP: a
photo is ``enrolments/<id>.<ext>`` in the input bucket (the server picks the id and the extension,
never the user) and its outcome ``enrolments/<id>.json`` in the output bucket. ``upload_key`` never
makes a folder, so no video uploaded by name lands there; a video put there directly is not one
(``is_video_key`` is false for every enrolment key), so neither pipeline takes the other's objects.

A video uploaded over HTTP is its caller's: ``videos/<owner>/<id>.<ext>``, the owner the caller's
identity (``iraas.web.auth.caller_identity``), the id and the extension chosen by the service, so its CSV
is ``videos/<owner>/<id>.csv`` and only the same caller's ``GET /v1/videos/<id>/csv`` builds that key.
The user's file name travels in the video's metadata (and the face function copies it onto the CSV).
A video an operator drops into the bucket by hand keeps the key it was given, as before.

Attendance across the whole lecture is written beside the CSV: ``<stem>.attendance.json``,
``<stem>.attendance.csv``; one small crop per unknown person goes under its own prefix,
``unknown-faces/<stem>-<n>.jpg``, so that it expires with the video (a face nobody enrolled is kept
no longer than the video it came from: ``VideoRetentionDays``, not the report's school year). While
a long lecture's segments are observed, each one's result is ``attendance-runs/<run>/<n>.json`` in the
output bucket (``run``: a hash of the video's bucket, key and ETag, so a new upload under the same
key is a new run); like ``enrolments/``, that folder holds no video.
"""

from __future__ import annotations

import hashlib
import posixpath
import re
import uuid

from iraas.names import safe_name

VIDEO_EXTENSIONS = (".mp4", ".mov", ".avi")
ENROLMENT_PREFIX = "enrolments/"
RUNS_PREFIX = "attendance-runs/"
UNKNOWN_FACES_PREFIX = "unknown-faces/"
_ENROLMENT_ID = re.compile(r"[0-9a-f]{32}")
_ENROLMENT_PHOTO = re.compile(r"enrolments/([0-9a-f]{32})\.([a-z0-9]{1,8})")
# Pillow's format name -> the extension a photo is stored under (the rest: the name in lower case).
_PHOTO_EXTENSIONS = {"JPEG": "jpg", "MPO": "jpg", "TIFF": "tif"}


def is_enrolment_key(key: str) -> bool:
    """Whether the key is in the ``enrolments/`` folder (as the CSV's key would be, so after normalising)."""
    return normalise_key(key).startswith(ENROLMENT_PREFIX)


def is_video_key(key: str) -> bool:
    return (
        key.lower().endswith(VIDEO_EXTENSIONS) and not is_enrolment_key(key)
        and not normalise_key(key).startswith(RUNS_PREFIX)
    )


def normalise_key(key: str) -> str:
    """The key without empty, ``.`` or ``..`` segments, so no key can climb out of its folder."""
    parts = [p for p in key.replace("\\", "/").split("/") if p not in ("", ".", "..")]
    return "/".join(parts)


def csv_key(video_key: str) -> str:
    """``<folder>/<stem>.csv`` for ``<folder>/<stem>.<ext>``."""
    key = normalise_key(video_key)
    if not key:
        raise ValueError(f"not a video key: {video_key!r}")
    root, _ext = posixpath.splitext(key)
    return f"{root}.csv"


def _root(video_key: str) -> str:
    key = normalise_key(video_key)
    if not key:
        raise ValueError(f"not a video key: {video_key!r}")
    return posixpath.splitext(key)[0]


def attendance_json_key(video_key: str) -> str:
    """``<folder>/<stem>.attendance.json`` for ``<folder>/<stem>.<ext>``."""
    return f"{_root(video_key)}.attendance.json"


def attendance_csv_key(video_key: str) -> str:
    return f"{_root(video_key)}.attendance.csv"


def unknown_crop_key(video_key: str, index: int) -> str:
    """The crop of the ``index``-th unknown person of a video's attendance report."""
    if not 0 <= index < 10_000:
        raise ValueError(f"not an unknown face's index: {index!r}")
    return f"{UNKNOWN_FACES_PREFIX}{_root(video_key)}-{index}.jpg"


def run_id(bucket: str, key: str, etag: str) -> str:
    """One attendance run of one upload: 32 hex digits from the video's bucket, key and ETag."""
    return hashlib.sha256(f"{bucket}\0{key}\0{etag}".encode()).hexdigest()[:32]


def segment_key(run: str, index: int) -> str:
    """``attendance-runs/<run>/<index>.json``: one segment's result, until the report is merged."""
    if not _ENROLMENT_ID.fullmatch(run) or not 0 <= index < 100_000:
        raise ValueError(f"not a segment: {run!r} {index!r}")
    return f"{RUNS_PREFIX}{run}/{index:05d}.json"


def upload_key(filename: str) -> str:
    """The input key for a video the operator uploads by name (``iraas videos submit``): a safe
    name, no folders."""
    name = safe_name(filename, default="video.mp4")
    if not is_video_key(name):
        raise ValueError(f"{filename!r} is not a video: the name must end in {', '.join(VIDEO_EXTENSIONS)}")
    return name


VIDEO_PREFIX = "videos/"
_OWNER = re.compile(r"[A-Za-z0-9]{1,65}")  # what caller_identity answers: anonymous, k<hex>, g<key id>
_VIDEO_ID = re.compile(r"[0-9a-f]{32}")
# A raw upload without a name: its extension from its Content-Type.
_VIDEO_TYPES = {"video/mp4": ".mp4", "video/quicktime": ".mov", "video/x-msvideo": ".avi"}


def video_extension(filename: str | None, content_type: str | None = None) -> str:
    """``.mp4``, ``.mov`` or ``.avi``: from the user's file name, else (no name) from the body's type.

    ValueError for a name that is not a video's, or no name and a type that is not one of them.
    """
    if filename:
        ext = posixpath.splitext(filename.replace("\\", "/"))[1].lower()
        if ext not in VIDEO_EXTENSIONS:
            raise ValueError(f"{filename!r} is not a video: the name must end in {', '.join(VIDEO_EXTENSIONS)}")
        return ext
    mime = (content_type or "").split(";")[0].strip().lower()
    if mime not in _VIDEO_TYPES:
        raise ValueError(f"a video without ?name= needs a Content-Type of {', '.join(_VIDEO_TYPES)}")
    return _VIDEO_TYPES[mime]


def new_video_id() -> str:
    """A fresh video id: 32 hex digits (a random UUID), so ids cannot be guessed or steered."""
    return uuid.uuid4().hex


def is_video_id(value: str) -> bool:
    return _VIDEO_ID.fullmatch(value) is not None


def owner_prefix(owner: str) -> str:
    """``videos/<owner>/``: the folder of one caller's HTTP uploads, in both video buckets."""
    if not _OWNER.fullmatch(owner):
        raise ValueError(f"not a caller identity: {owner!r}")
    return f"{VIDEO_PREFIX}{owner}/"


def _owner_folder(owner: str, video_id: str) -> str:
    if not is_video_id(video_id):
        raise ValueError(f"not a video id: {video_id!r}")
    return f"{owner_prefix(owner)}{video_id}"


def owned_video_key(owner: str, video_id: str, extension: str) -> str:
    """``videos/<owner>/<id>.<ext>`` in the video input bucket: an HTTP upload."""
    if extension not in VIDEO_EXTENSIONS:
        raise ValueError(f"not a video extension: {extension!r}")
    return _owner_folder(owner, video_id) + extension


def owned_csv_key(owner: str, video_id: str) -> str:
    """``videos/<owner>/<id>.csv`` in the video output bucket: ``csv_key`` of the owned video's key."""
    return _owner_folder(owner, video_id) + ".csv"


def owned_attendance_key(owner: str, video_id: str) -> str:
    """``videos/<owner>/<id>.attendance.json``: ``attendance_json_key`` of the owned video's key."""
    return _owner_folder(owner, video_id) + ".attendance.json"


def owned_crop_key(owner: str, video_id: str, index: int) -> str:
    """``unknown_crop_key`` of the owned video's key."""
    return unknown_crop_key(_owner_folder(owner, video_id) + ".mp4", index)


def new_enrolment_id() -> str:
    """A fresh enrolment id: 32 hex digits (a random UUID), so ids cannot be guessed or steered."""
    return uuid.uuid4().hex


def is_enrolment_id(value: str) -> bool:
    return _ENROLMENT_ID.fullmatch(value) is not None


def enrolment_photo_key(enrolment_id: str, image_format: str) -> str:
    """``enrolments/<id>.<ext>`` in the video input bucket, the extension from the format decoded."""
    if not is_enrolment_id(enrolment_id):
        raise ValueError(f"not an enrolment id: {enrolment_id!r}")
    fmt = image_format.upper()
    ext = _PHOTO_EXTENSIONS.get(fmt) or re.sub(r"[^a-z0-9]", "", fmt.lower())[:8] or "img"
    return f"{ENROLMENT_PREFIX}{enrolment_id}.{ext}"


def enrolment_outcome_key(enrolment_id: str) -> str:
    """``enrolments/<id>.json`` in the video output bucket."""
    if not is_enrolment_id(enrolment_id):
        raise ValueError(f"not an enrolment id: {enrolment_id!r}")
    return f"{ENROLMENT_PREFIX}{enrolment_id}.json"


def enrolment_id_of(key: str) -> str | None:
    """The id of a photo key ``enrolment_photo_key`` made; None for any other key."""
    match = _ENROLMENT_PHOTO.fullmatch(key)
    return match.group(1) if match else None
