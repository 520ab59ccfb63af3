"""Object-key segments from user input: the one sanitiser both phases build their keys with.

User input (file names, ids, worker ids) goes through here before it becomes part of a key, so it
can never steer a key outside its prefix.
"""

from __future__ import annotations

import base64
import binascii
import posixpath
import re

_UNSAFE = re.compile(r"[^A-Za-z0-9._-]+")
MAX_NAME_CHARS = 100


def safe_name(filename: str | None, default: str = "image") -> str:
    """A file name reduced to ``[A-Za-z0-9._-]``, with no path and no leading dots.

    ``../../etc/passwd`` becomes ``passwd``; ``C:\\photos\\my cat.JPG`` becomes ``my_cat.JPG``.
    """
    base = (filename or "").replace("\\", "/").split("/")[-1]
    base = _UNSAFE.sub("_", base).lstrip("._")
    if len(base) > MAX_NAME_CHARS:  # keep the extension, shorten the rest
        root, ext = posixpath.splitext(base)
        ext = ext[:11]
        base = root[: MAX_NAME_CHARS - len(ext)] + ext
    return base or default


def safe_segment(value: str, max_chars: int = 128) -> str:
    """An opaque id (a message id, a worker id) as one key segment: ``[A-Za-z0-9._-]``, bounded."""
    return _UNSAFE.sub("_", value)[:max_chars] or "unknown"


def to_metadata(text: str) -> str:
    """``text`` as an S3 metadata value: base64url of its UTF-8 (metadata must be ASCII)."""
    return base64.urlsafe_b64encode(text.encode()).decode("ascii")


def from_metadata(value: str | None) -> str | None:
    """The text :func:`to_metadata` made, None for a missing, empty or malformed value."""
    if not value:
        return None
    try:
        return base64.urlsafe_b64decode(value.encode("ascii")).decode() or None
    except (ValueError, binascii.Error):  # UnicodeError is a ValueError
        return None
