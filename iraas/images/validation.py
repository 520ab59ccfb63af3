"""Validate and decode untrusted image bytes.

Light on purpose: only the standard library and Pillow, because the web tier (Lambda) imports
this to reject bad uploads before they are queued, and the worker imports it to decode them.

Two entry points:

* :func:`inspect_image` is the web tier's cheap check: identify the format, check the pixel
  count from the header *before* any pixel is decoded, then prove the pixel data decodes at low
  cost (JPEGs are decoded at 1/8 scale through libjpeg's DCT scaling).
* :func:`decode_rgb` is the worker's full decode: EXIF orientation applied, converted to RGB.
  With ``min_side`` (the classifier passes the side it resizes to), a large JPEG is decoded at
  1/2, 1/4 or 1/8 scale straight from the DCT, never below ``min_side`` on either side.

Both raise :class:`ImageError` with a stable ``code`` that callers can pass on to clients.

Truncated files must be rejected, so this module relies on Pillow's default
``ImageFile.LOAD_TRUNCATED_IMAGES = False`` and never changes it (it is a process-wide switch);
the unit tests check that the default is still in force.
"""

from __future__ import annotations

import io
from dataclasses import dataclass

from PIL import Image, ImageFile, ImageOps, UnidentifiedImageError

NOT_AN_IMAGE = "not_an_image"
UNDECODABLE = "undecodable"
TOO_MANY_PIXELS = "too_many_pixels"

# Where transparent pixels are flattened to: a neutral white, like most viewers show them.
_BACKGROUND = (255, 255, 255)


class ImageError(ValueError):
    """The bytes are not an image we accept; ``code`` is stable, ``message`` is for humans."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code = code
        self.message = message

    def __repr__(self) -> str:
        return f"ImageError({self.code!r}, {self.message!r})"


@dataclass(frozen=True)
class ImageInfo:
    """What :func:`inspect_image` learnt about a valid image."""

    format: str  # Pillow's format name, e.g. "JPEG", "PNG"
    width: int
    height: int
    mime: str  # e.g. "image/jpeg"


def inspect_image(data: bytes, max_pixels: int) -> ImageInfo:
    """Check that ``data`` is a decodable image of at most ``max_pixels`` pixels, cheaply.

    Raises :class:`ImageError` (``not_an_image``, ``too_many_pixels`` or ``undecodable``).
    """
    img = _open_checked(data, max_pixels)
    width, height = img.size
    fmt = img.format or "unknown"
    mime = img.get_format_mimetype() or Image.MIME.get(fmt) or "application/octet-stream"
    if fmt == "JPEG":
        # Decode at 1/8 scale: libjpeg still walks every entropy-coded block (so truncation and
        # corruption are caught) but skips most of the inverse DCT and colour conversion work.
        img.draft("RGB", (max(1, width // 8), max(1, height // 8)))
    _load(img)
    return ImageInfo(format=fmt, width=width, height=height, mime=mime)


def decode_rgb(data: bytes, max_pixels: int, min_side: int | None = None) -> Image.Image:
    """Fully decode ``data`` into an upright RGB image (EXIF orientation applied).

    Handles L, LA, P, RGBA, CMYK, 16-bit and other modes; transparency is flattened on white.
    With ``min_side``, a JPEG at least twice that on both sides is decoded at the smallest of
    1/2, 1/4, 1/8 scale that keeps both sides >= ``min_side`` (libjpeg's DCT scaling: several
    times less work for a camera photo); other images are decoded at full size.
    Raises :class:`ImageError` like :func:`inspect_image`.
    """
    img = _open_checked(data, max_pixels)
    if min_side and img.format == "JPEG":
        # A square request: the bound holds for the shorter side whatever the EXIF rotation.
        img.draft(img.mode, (min_side, min_side))
    _load(img)
    try:
        upright = ImageOps.exif_transpose(img)
    except Exception:  # noqa: BLE001 - a broken EXIF block must not cost us a decodable image
        upright = img
    try:
        return _to_rgb(upright)
    except Exception as exc:  # noqa: BLE001 - odd modes Pillow cannot convert
        raise ImageError(UNDECODABLE, f"cannot convert {img.mode} image to RGB: {exc}") from exc


def _open_checked(data: bytes, max_pixels: int) -> ImageFile.ImageFile:
    """Identify the image and enforce the pixel limit from its header alone."""
    if not data:
        raise ImageError(NOT_AN_IMAGE, "empty file: not an image")
    try:
        img = Image.open(io.BytesIO(data))
    except UnidentifiedImageError as exc:
        raise ImageError(NOT_AN_IMAGE, "not an image, or an image format we cannot read") from exc
    except Image.DecompressionBombError as exc:
        # Pillow's own (global, 2 x MAX_IMAGE_PIXELS) guard fired before ours could.
        raise ImageError(
            TOO_MANY_PIXELS, f"image has too many pixels (limit {max_pixels:,}): {exc}"
        ) from exc
    except Exception as exc:  # noqa: BLE001 - a plugin recognised the format, then choked
        raise ImageError(UNDECODABLE, f"cannot read image header: {exc}") from exc
    width, height = img.size
    if width * height > max_pixels:
        raise ImageError(
            TOO_MANY_PIXELS,
            f"image is {width}x{height} = {width * height:,} pixels; "
            f"the limit is {max_pixels:,} pixels",
        )
    if width < 1 or height < 1:
        raise ImageError(UNDECODABLE, f"image has no pixels ({width}x{height})")
    return img


def _load(img: Image.Image) -> None:
    """Decode the pixel data, mapping every decoder failure to ``undecodable``."""
    try:
        img.load()
    except Image.DecompressionBombError as exc:  # e.g. PNG text chunks that inflate too far
        raise ImageError(TOO_MANY_PIXELS, str(exc)) from exc
    except Exception as exc:  # noqa: BLE001 - Pillow raises OSError, SyntaxError, EOFError, ...
        fmt = img.format or "image"
        raise ImageError(UNDECODABLE, f"corrupt or truncated {fmt} data: {exc}") from exc


def _to_rgb(img: Image.Image) -> Image.Image:
    if img.mode == "RGB":
        return img
    if img.mode in ("I;16", "I;16L", "I;16B", "I;16N", "I"):
        # 16-bit samples: Pillow's convert("L") clips at 255 instead of scaling, which would
        # turn most of a 16-bit photo white.
        return img.convert("I").point(lambda v: v / 256).convert("L").convert("RGB")
    if img.mode == "F":
        return img.convert("L").convert("RGB")
    if img.mode == "P" and "transparency" in img.info:
        img = img.convert("RGBA")
    if img.mode in ("RGBA", "LA", "PA", "RGBa", "La"):
        rgba = img.convert("RGBA")
        flat = Image.new("RGB", rgba.size, _BACKGROUND)
        flat.paste(rgba, mask=rgba.getchannel("A"))
        return flat
    return img.convert("RGB")
