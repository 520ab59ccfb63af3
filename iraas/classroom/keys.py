"""Object keys of the face pipeline, built only here.

A video's CSV has the video's key with its extension replaced by ``.csv``, in the output bucket:
``Class 1/monday.mp4`` -> ``Class 1/monday.csv``. The key derives from the video's key alone, so a
repeated S3 event overwrites the same CSV instead of adding one.
"""

from __future__ import annotations

import posixpath

from iraas.names import safe_name

VIDEO_EXTENSIONS = (".mp4", ".mov", ".avi")


def is_video_key(key: str) -> bool:
    return key.lower().endswith(VIDEO_EXTENSIONS)


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


def upload_key(filename: str) -> str:
    """The input key for a video a user uploads by name (CLI, HTTP): a safe name, no folders."""
    name = safe_name(filename, default="video.mp4")
    if not is_video_key(name):
        raise ValueError(f"{filename!r} is not a video: the name must end in {', '.join(VIDEO_EXTENSIONS)}")
    return name
