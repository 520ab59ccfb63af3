"""Turn a request body into one checked image upload, or an error that says what is wrong with it.

Shared by both phases: an image to classify and a student's enrolment photo are taken the same way,
bounded by :class:`UploadLimits` (the same variables, the same defaults).
"""

from __future__ import annotations

import io
import os
from collections.abc import Mapping
from dataclasses import dataclass

import multipart

from iraas.config import MIB, integer
from iraas.errors import InvalidRequest, TooLarge, UnsupportedMediaType
from iraas.media.validation import ImageError, ImageInfo, inspect_image
from iraas.names import safe_name

_RAW_TYPES = ("image/", "application/octet-stream")
# Multipart framing (boundaries, part headers) a body may carry on top of the largest image.
MULTIPART_HEADROOM = 64 * 1024


@dataclass(frozen=True)
class UploadLimits:
    """Bounds on one uploaded image, checked before it is decoded."""

    # 10 MiB is API Gateway's payload limit; behind Lambda the effective body limit is ~4.5 MiB
    # (6 MB invocation payload, base64-encoded), see docs/security.md.
    max_image_bytes: int = 10 * MIB
    # Decompression-bomb guard, checked from the image header before any pixel is decoded. The
    # classifier sees 224 x 224, so 25 MP (a 6000 x 4000 camera photo) loses nothing; it bounds one
    # decode to 100 MB in the web tier, 200 MB in the worker (see iraas/media/validation.py).
    max_image_pixels: int = 25_000_000

    @property
    def max_body_bytes(self) -> int:
        """The largest request body that can still hold an acceptable image (multipart framed)."""
        return self.max_image_bytes + MULTIPART_HEADROOM


def load_upload_limits(env: Mapping[str, str] | None = None) -> UploadLimits:
    """``IRAAS_MAX_IMAGE_BYTES`` and ``IRAAS_MAX_IMAGE_PIXELS``, checked."""
    env = os.environ if env is None else env
    return UploadLimits(
        max_image_bytes=integer(env, "IRAAS_MAX_IMAGE_BYTES", UploadLimits.max_image_bytes, 1024, 100 * MIB),
        max_image_pixels=integer(env, "IRAAS_MAX_IMAGE_PIXELS", UploadLimits.max_image_pixels, 1024, 500_000_000),
    )


@dataclass(frozen=True)
class Upload:
    name: str
    data: bytes
    info: ImageInfo


def _mib(n: int) -> str:
    return f"{n / (1024 * 1024):.1f} MiB"


def too_large(size: int, limit: int) -> TooLarge:
    return TooLarge("too_large", f"the image is {size} bytes; the limit is {limit} bytes ({_mib(limit)})")


def parse_upload(
    body: bytes | None, content_type: str | None, name: str | None, limits: UploadLimits
) -> Upload:
    """Find the one image in ``body`` (raw ``image/*`` or multipart), check it, return it.

    ``name`` is the file name for a raw body (from ``?name=``); multipart parts carry their own.
    """
    body = body or b""
    media_type, options = multipart.parse_options_header(content_type or "")
    media_type = media_type.lower()
    if media_type == "multipart/form-data":
        if len(body) > limits.max_body_bytes:
            raise too_large(len(body), limits.max_image_bytes)
        filename, data = _file_from_multipart(body, options.get("boundary", ""), limits)
    elif media_type.startswith(_RAW_TYPES):
        filename, data = name, body
    else:
        raise UnsupportedMediaType(
            "unsupported_media_type",
            f"Content-Type {media_type or '(none)'} is not accepted; send the image as the raw "
            "body with Content-Type image/*, or as a file field of multipart/form-data",
        )
    if not data:
        raise InvalidRequest("no_file", "the request carries no image file")
    if len(data) > limits.max_image_bytes:
        raise too_large(len(data), limits.max_image_bytes)
    try:
        info = inspect_image(data, limits.max_image_pixels)
    except ImageError as exc:
        if exc.code == "too_many_pixels":
            raise TooLarge(exc.code, exc.message) from None
        raise InvalidRequest(exc.code, exc.message) from None
    default = "image." + (info.format or "img").lower()
    return Upload(name=safe_name(filename, default=default), data=data, info=info)


def _file_from_multipart(body: bytes, boundary: str, limits: UploadLimits) -> tuple[str | None, bytes]:
    """The first file part of a multipart body, whatever its field name."""
    if not boundary:
        raise InvalidRequest("bad_multipart", "multipart/form-data without a boundary")
    parser = multipart.MultipartParser(
        io.BytesIO(body),
        boundary,
        content_length=len(body),
        part_limit=16,
        # The body is already bounded and in memory: keep its parts there too, and let the size
        # check after parsing say "too large" with the limit.
        spool_limit=len(body) + 1,
        memory_limit=len(body) + MULTIPART_HEADROOM,
    )
    try:
        for part in parser:
            if part.filename is not None:
                return part.filename, part.raw
    except multipart.MultipartError as exc:
        raise InvalidRequest("bad_multipart", f"the multipart body cannot be parsed: {exc}") from None
    raise InvalidRequest("no_file", "the multipart form has no file field")
