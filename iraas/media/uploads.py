"""Turn a request body into one checked image upload, or an error that says what is wrong with it;
or a batch's body into its parts, each a checked upload or the reason it is not one.

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
    # A batch (POST /v1/batches): at most this many file parts, and this many bytes in all. On AWS a
    # batch must also fit a synchronous Lambda invocation's payload (6 MB, base64-encoded by API
    # Gateway: about 4.4 MB of images), whatever this says.
    max_batch_files: int = 16
    max_batch_bytes: int = 32 * MIB

    @property
    def max_body_bytes(self) -> int:
        """The largest request body that can still hold an acceptable image (multipart framed)."""
        return self.max_image_bytes + MULTIPART_HEADROOM

    @property
    def max_request_bytes(self) -> int:
        """The largest body any image route takes: one image's, or a batch's."""
        return max(self.max_body_bytes, self.max_batch_bytes)


def load_upload_limits(env: Mapping[str, str] | None = None) -> UploadLimits:
    """``IRAAS_MAX_IMAGE_BYTES``, ``IRAAS_MAX_IMAGE_PIXELS``, ``IRAAS_MAX_BATCH_FILES`` and
    ``IRAAS_MAX_BATCH_BYTES``, checked."""
    env = os.environ if env is None else env
    return UploadLimits(
        max_image_bytes=integer(env, "IRAAS_MAX_IMAGE_BYTES", UploadLimits.max_image_bytes, 1024, 100 * MIB),
        max_image_pixels=integer(env, "IRAAS_MAX_IMAGE_PIXELS", UploadLimits.max_image_pixels, 1024, 500_000_000),
        max_batch_files=integer(env, "IRAAS_MAX_BATCH_FILES", UploadLimits.max_batch_files, 1, 100),
        max_batch_bytes=integer(env, "IRAAS_MAX_BATCH_BYTES", UploadLimits.max_batch_bytes, 1024, 1024 * MIB),
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
    return checked_upload(filename, data, limits)


def checked_upload(filename: str | None, data: bytes, limits: UploadLimits) -> Upload:
    """One file's bytes as an upload: not empty, within the byte and pixel limits, an image."""
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
    parser = _parser(body, boundary, part_limit=16)
    try:
        for part in parser:
            if part.filename is not None:
                return part.filename, part.raw
    except multipart.MultipartError as exc:
        raise InvalidRequest("bad_multipart", f"the multipart body cannot be parsed: {exc}") from None
    raise InvalidRequest("no_file", "the multipart form has no file field")


@dataclass(frozen=True)
class RejectedPart:
    """A part of a batch that is not an acceptable image: its name and why, with the codes a
    single upload would get (``not_an_image``, ``too_large``, ...)."""

    name: str
    code: str
    message: str


def parse_batch(body: bytes | None, content_type: str | None, limits: UploadLimits) -> list[Upload | RejectedPart]:
    """Each file part of a multipart ``body`` (whatever its field name), in order: a checked upload,
    or the reason it is not one. The batch as a whole is refused when it is not multipart, has no
    file part, more than ``max_batch_files`` of them (413 ``too_many_files``), or more than
    ``max_batch_bytes``."""
    body = body or b""
    media_type, options = multipart.parse_options_header(content_type or "")
    if media_type.lower() != "multipart/form-data":
        raise UnsupportedMediaType(
            "unsupported_media_type",
            f"Content-Type {media_type or '(none)'} is not accepted; send a batch as multipart/form-data "
            f"with 1 to {limits.max_batch_files} file parts",
        )
    if len(body) > limits.max_batch_bytes:
        raise TooLarge(
            "too_large", f"the batch is {len(body)} bytes; the limit is {limits.max_batch_bytes} bytes "
            f"({_mib(limits.max_batch_bytes)})",
        )
    files = _files_from_multipart(body, options.get("boundary", ""), limits.max_batch_files)
    if not files:
        raise InvalidRequest("no_file", "the multipart form has no file field")
    parts: list[Upload | RejectedPart] = []
    for index, (filename, data) in enumerate(files, start=1):
        try:
            parts.append(checked_upload(filename, data, limits))
        except (InvalidRequest, TooLarge) as exc:
            parts.append(RejectedPart(safe_name(filename, default=f"part-{index}"), exc.code, exc.message))
    return parts


def _files_from_multipart(body: bytes, boundary: str, max_files: int) -> list[tuple[str | None, bytes]]:
    """Every file part of a multipart body, in order; 413 ``too_many_files`` past ``max_files``."""
    parser = _parser(body, boundary, part_limit=2 * max_files + 16)  # room for form fields between files
    files: list[tuple[str | None, bytes]] = []
    try:
        for part in parser:
            if part.filename is None:
                continue
            if len(files) == max_files:
                raise TooLarge("too_many_files", f"a batch holds at most {max_files} files")
            files.append((part.filename, part.raw))
    except multipart.MultipartError as exc:
        raise InvalidRequest("bad_multipart", f"the multipart body cannot be parsed: {exc}") from None
    return files


def _parser(body: bytes, boundary: str, part_limit: int) -> multipart.MultipartParser:
    if not boundary:
        raise InvalidRequest("bad_multipart", "multipart/form-data without a boundary")
    return multipart.MultipartParser(
        io.BytesIO(body),
        boundary,
        content_length=len(body),
        part_limit=part_limit,
        # The body is already bounded and in memory: keep its parts there too, and let the size
        # check after parsing say "too large" with the limit.
        spool_limit=len(body) + 1,
        memory_limit=len(body) + MULTIPART_HEADROOM,
    )
