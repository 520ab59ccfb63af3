"""Turn an HTTP request body into one checked image upload, or a clear 4xx error."""

from __future__ import annotations

import io
from dataclasses import dataclass

import multipart

from iraas.config import MULTIPART_HEADROOM, Limits
from iraas.errors import ApiError
from iraas.images.validation import ImageError, ImageInfo, inspect_image
from iraas.names import safe_name

_RAW_TYPES = ("image/", "application/octet-stream")


@dataclass(frozen=True)
class Upload:
    name: str
    data: bytes
    info: ImageInfo


def _mib(n: int) -> str:
    return f"{n / (1024 * 1024):.1f} MiB"


def too_large(size: int, limit: int) -> ApiError:
    return ApiError(
        413, "too_large", f"the image is {size} bytes; the limit is {limit} bytes ({_mib(limit)})"
    )


def parse_upload(
    body: bytes | None, content_type: str | None, name: str | None, limits: Limits
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
        raise ApiError(
            415,
            "unsupported_media_type",
            f"Content-Type {media_type or '(none)'} is not accepted; send the image as the raw "
            "body with Content-Type image/*, or as a file field of multipart/form-data",
        )
    if not data:
        raise ApiError(400, "no_file", "the request carries no image file")
    if len(data) > limits.max_image_bytes:
        raise too_large(len(data), limits.max_image_bytes)
    try:
        info = inspect_image(data, limits.max_image_pixels)
    except ImageError as exc:
        status = 413 if exc.code == "too_many_pixels" else 400
        raise ApiError(status, exc.code, exc.message) from None
    default = "image." + (info.format or "img").lower()
    return Upload(name=safe_name(filename, default=default), data=data, info=info)


def _file_from_multipart(body: bytes, boundary: str, limits: Limits) -> tuple[str | None, bytes]:
    """The first file part of a multipart body, whatever its field name."""
    if not boundary:
        raise ApiError(400, "bad_multipart", "multipart/form-data without a boundary")
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
        raise ApiError(400, "bad_multipart", f"the multipart body cannot be parsed: {exc}") from None
    raise ApiError(400, "no_file", "the multipart form has no file field")
