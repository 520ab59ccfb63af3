"""Validate and decode untrusted image bytes, in bounded memory.

Light on purpose: only the standard library and Pillow, because the web tier (Lambda) imports
this to reject bad uploads before they are queued, and the worker imports it to decode them.

Two entry points:

* :func:`inspect_image` is the web tier's cheap check: identify the format, check the pixel
  count from the header *before* any pixel is decoded, then prove the pixel data decodes without
  holding it: a PNG's rows are inflated and checked a slice at a time and never kept, a JPEG is
  decoded at 1/8 scale through libjpeg's DCT scaling; GIF, BMP, TIFF and WebP are decoded whole.
* :func:`decode_rgb` is the worker's full decode: EXIF orientation applied, converted to RGB.
  With ``min_side`` (the classifier passes the side it resizes to), a large JPEG is decoded at
  1/2, 1/4 or 1/8 scale straight from the DCT, never below ``min_side`` on either side.

Both raise :class:`ImageError` with a stable ``code`` that callers can pass on to clients.

Bounds (checked by tests/unit/media/test_validation.py; the memory per decode measured by
tests/integration/media/test_validation.py):

* Only :data:`FORMATS` are read: ``Image.open`` tries no other plugin, so a file that another
  one would claim (EPS through Ghostscript, PDF, PSD, ...) is ``not_an_image`` and never reaches
  its decoder; so is an RLE-compressed BMP (Pillow decodes it in Python: seconds of CPU for 10
  MiB). Every decode in the package goes through this module.
* Every decode gets the same memory, :data:`BYTES_PER_PIXEL` x ``max_pixels`` (100 MB at the
  default 25 megapixels) for the decoder and the image it makes: Pillow keeps each mode these
  formats give in at most 4 bytes a pixel (RGB as RGBX), so most images may have ``max_pixels``.
  A decoder that needs more per pixel gets proportionally fewer (:func:`pixel_limit`): a WebP
  (libwebp's two canvases and the copy it hands Pillow: 16 bytes), a progressive or multi-scan
  JPEG (libjpeg keeps every DCT coefficient, 2 bytes a sample), a TIFF that libtiff decompresses
  (a strip buffer of its own).
* So :func:`inspect_image` holds at most that budget (a PNG only a few slices of rows, a baseline
  JPEG 1/64 of it), and :func:`decode_rgb` at most twice it: the decode and its conversion to RGB
  or its rotation. The worker decodes on a few threads, so it needs that times its decode threads.

Truncated files must be rejected, so this module relies on Pillow's default
``ImageFile.LOAD_TRUNCATED_IMAGES = False`` and never changes it (it is a process-wide switch);
the unit tests check that the default is still in force.
"""

from __future__ import annotations

import io
import struct
import zlib
from dataclasses import dataclass

from PIL import Image, ImageFile, UnidentifiedImageError

NOT_AN_IMAGE = "not_an_image"
UNDECODABLE = "undecodable"
TOO_MANY_PIXELS = "too_many_pixels"

# What we decode, and nothing else (GIF: its first frame; TIFF: its first page; BMP: uncompressed).
FORMATS: tuple[str, ...] = ("JPEG", "PNG", "WEBP", "GIF", "BMP", "TIFF")
# Pillow's JPEG plugin names a phone's multi-picture JPEG "MPO": the same decoder, the same draft.
_JPEG_LIKE = ("JPEG", "MPO")
BYTES_PER_PIXEL = 4  # the decode budget per pixel of the limit; what Pillow's image takes at most
_WEBP_BYTES_PER_PIXEL = 16  # measured: libwebp's canvas, its copy for disposal, Pillow's copy

# Where transparent pixels are flattened to: a neutral white, like most viewers show them.
_BACKGROUND = (255, 255, 255)

# EXIF Orientation -> the transposition that makes the image upright (as ImageOps.exif_transpose).
_ORIENTATION = {
    2: Image.Transpose.FLIP_LEFT_RIGHT,
    3: Image.Transpose.ROTATE_180,
    4: Image.Transpose.FLIP_TOP_BOTTOM,
    5: Image.Transpose.TRANSPOSE,
    6: Image.Transpose.ROTATE_270,
    7: Image.Transpose.TRANSVERSE,
    8: Image.Transpose.ROTATE_90,
}


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


def pixel_limit(img: ImageFile.ImageFile, data: bytes, max_pixels: int) -> int:
    """The most pixels ``img`` (opened from ``data``) may have: the same memory for every decode."""
    return max_pixels * BYTES_PER_PIXEL // _bytes_per_pixel(img, data)


def _bytes_per_pixel(img: ImageFile.ImageFile, data: bytes) -> int:
    """Resident bytes per pixel that decoding ``img`` takes, its decoded image included (measured)."""
    if img.format == "WEBP":
        return _WEBP_BYTES_PER_PIXEL
    if img.format in _JPEG_LIKE:
        components = int(getattr(img, "layers", 3) or 3)
        if img.info.get("progressive") or _jpeg_keeps_coefficients(data, components):
            return BYTES_PER_PIXEL + 2 * components  # even at 1/8 scale: the coefficients are whole
    if img.format == "TIFF" and img.tile and img.tile[0].codec_name == "libtiff":
        # libtiff decompresses a strip (at most the whole image) into a buffer of its own, raw
        # samples or RGBA, before Pillow unpacks it.
        tags = getattr(img, "tag_v2", {})
        try:
            bits = tags.get(258, (8,))  # BitsPerSample, one per sample or one for all
            bits = tuple(int(b) for b in bits) if isinstance(bits, tuple) else (int(bits),)
            samples = int(tags.get(277, len(bits)) or 1)  # SamplesPerPixel
            raw = -(-sum(bits) // 8) if len(bits) == samples else -(-(bits[0] * samples) // 8)
        except (TypeError, ValueError, IndexError):
            raw = 4 * BYTES_PER_PIXEL  # a layout we cannot read: assume the widest Pillow decodes
        return BYTES_PER_PIXEL + max(BYTES_PER_PIXEL, raw)
    return BYTES_PER_PIXEL


def _jpeg_keeps_coefficients(data: bytes, components: int) -> bool:
    """Whether libjpeg keeps the whole image's DCT coefficients while decoding ``data``.

    It does for a progressive JPEG, and for one whose first scan lacks a component (a multi-scan
    baseline JPEG): the image is finished only by later scans. The markers are walked up to the
    first scan, as Pillow walked them to open the file (an EXIF thumbnail sits inside its segment).
    """
    pos = 2
    while pos + 4 < len(data):
        if data[pos] != 0xFF:  # junk between segments: libjpeg (and Pillow) skip to the next marker
            pos = data.find(b"\xff", pos)
            if pos < 0:
                return False
            continue
        marker = data[pos + 1]
        if marker == 0xFF:  # fill byte
            pos += 1
            continue
        if marker == 0x01 or 0xD0 <= marker <= 0xD8:  # TEM, RSTn, SOI: markers without a length
            pos += 2
            continue
        if marker in (0xC2, 0xC6, 0xCA, 0xCE):  # SOF2, 6, 10, 14: progressive
            return True
        if marker == 0xDA:  # the first scan: does it hold every component?
            return data[pos + 4] < components
        pos += 2 + int.from_bytes(data[pos + 2 : pos + 4], "big")
    return False


def inspect_image(data: bytes, max_pixels: int) -> ImageInfo:
    """Check that ``data`` is a decodable image of at most ``max_pixels`` pixels, cheaply.

    Raises :class:`ImageError` (``not_an_image``, ``too_many_pixels`` or ``undecodable``).
    """
    img = _open_checked(data, max_pixels)
    width, height = img.size
    fmt = img.format or "unknown"
    mime = img.get_format_mimetype() or Image.MIME.get(fmt) or "application/octet-stream"
    if fmt == "PNG":
        _check_png_rows(data, width, height)
        return ImageInfo(format=fmt, width=width, height=height, mime=mime)
    if fmt in _JPEG_LIKE:
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
    img: Image.Image = _open_checked(data, max_pixels)
    if min_side and img.format in _JPEG_LIKE:
        # A square request: the bound holds for the shorter side whatever the EXIF rotation.
        img.draft(img.mode, (min_side, min_side))
    _load(img)
    method = _ORIENTATION.get(_orientation(img))
    mode = img.mode
    try:
        # One conversion a step, each rebinding ``img``: the image before it can go, so no more
        # than two full-size images are ever alive (the bound in the module's docstring).
        for _step in range(4):
            if img.mode == "RGB":
                break
            img = _towards_rgb(img)
        else:
            raise ValueError(f"no conversion path from {mode}")
    except Exception as exc:  # noqa: BLE001 - odd modes Pillow cannot convert
        raise ImageError(UNDECODABLE, f"cannot convert {mode} image to RGB: {exc}") from exc
    if method is not None:
        img = img.transpose(method)
    return img


def is_upright_jpeg(data: bytes, max_pixels: int) -> bool:
    """Whether ``data`` is a JPEG whose stored pixels are its RGB picture: YCbCr or grey (not
    CMYK), and no EXIF rotation. Reads the header only; raises :class:`ImageError` like
    :func:`inspect_image` (not an image, too many pixels). Such a file may be decoded by another
    JPEG decoder (the worker's, straight into an array) with the same result as :func:`decode_rgb`.
    """
    img = _open_checked(data, max_pixels)
    return img.format in _JPEG_LIKE and img.mode in ("RGB", "L") and _orientation(img) == 1


def _open_checked(data: bytes, max_pixels: int) -> ImageFile.ImageFile:
    """Identify the image among :data:`FORMATS` and enforce the pixel limit from its header alone."""
    if not data:
        raise ImageError(NOT_AN_IMAGE, "empty file: not an image")
    try:
        img = Image.open(io.BytesIO(data), formats=FORMATS)
    except UnidentifiedImageError as exc:
        # Also for a format Pillow knows but FORMATS leaves out: the message clients already see.
        raise ImageError(NOT_AN_IMAGE, "not an image, or an image format we cannot read") from exc
    except Image.DecompressionBombError as exc:
        # Pillow's own (global, 2 x MAX_IMAGE_PIXELS) guard fired before ours could.
        raise ImageError(
            TOO_MANY_PIXELS, f"image has too many pixels (limit {max_pixels:,}): {exc}"
        ) from exc
    except Exception as exc:  # noqa: BLE001 - a plugin recognised the format, then choked
        raise ImageError(UNDECODABLE, f"cannot read image header: {exc}") from exc
    width, height = img.size
    limit = pixel_limit(img, data, max_pixels)
    if width * height > limit:
        note = "" if limit == max_pixels else f" for this {img.format}, whose decoder takes more memory per pixel"
        raise ImageError(
            TOO_MANY_PIXELS,
            f"image is {width}x{height} = {width * height:,} pixels; "
            f"the limit is {limit:,} pixels{note}",
        )
    if width < 1 or height < 1:
        raise ImageError(UNDECODABLE, f"image has no pixels ({width}x{height})")
    if img.format == "BMP" and any(tile.codec_name == "bmp_rle" for tile in img.tile):
        # Pillow decodes RLE in Python, a byte pair at a time: ~2 s of CPU for a 10 MiB upload.
        raise ImageError(NOT_AN_IMAGE, "RLE-compressed BMP is not read; send it uncompressed, or as PNG")
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


def _orientation(img: Image.Image) -> int:
    try:
        return int(img.getexif().get(0x0112, 1))  # EXIF Orientation; 1 is upright
    except Exception:  # noqa: BLE001 - a broken EXIF block must not cost us a decodable image
        return 1


# 32-bit integer samples, scaled to 8 bits (the 16-bit range, as for I;16) in one lookup.
_I_TO_L = [v // 256 for v in range(65536)]


def _towards_rgb(img: Image.Image) -> Image.Image:
    """One step from ``img``'s mode towards RGB, making one new image (two for 16-bit samples)."""
    if img.mode in ("I;16", "I;16L", "I;16B", "I;16N"):
        # 16-bit samples: Pillow's convert("L") clips at 255 instead of scaling, which would
        # turn most of a 16-bit photo white. point() keeps the (2-byte) mode, so scale there first.
        return img.point(lambda v: v / 256).convert("L")
    if img.mode == "I":
        return img.point(_I_TO_L, "L")
    if img.mode == "F":
        return img.convert("L")
    if img.mode == "P" and "transparency" in img.info:
        return img.convert("RGBA")
    if img.mode in ("PA", "RGBa", "La"):
        return img.convert("RGBA")
    if img.mode in ("RGBA", "LA"):
        # Flatten on white. An RGBA or LA mask is its alpha band, and both paste onto RGB as they
        # are: no copy of the image or of its channel.
        flat = Image.new("RGB", img.size, _BACKGROUND)
        flat.paste(img, mask=img)
        return flat
    return img.convert("RGB")


# --- PNG rows, checked without keeping them -----------------------------------------------------

_PNG_CHANNELS = {0: 1, 2: 3, 3: 1, 4: 2, 6: 4}  # colour type -> samples per pixel
# Adam7's passes: first column and row, then the steps between them.
_ADAM7 = ((0, 0, 8, 8), (4, 0, 8, 8), (0, 4, 4, 8), (2, 0, 4, 4), (0, 2, 2, 4), (1, 0, 2, 2), (0, 1, 1, 2))
_INFLATE_STEP = 256 * 1024  # inflated bytes held at a time: all the memory the check needs
_MAX_PNG_FILTER = 4  # filter types 0-4; Pillow's decoder refuses any other


def _png_passes(width: int, height: int, depth: int, colour: int, interlaced: bool) -> list[tuple[int, int]]:
    """(bytes per row including its filter byte, rows) for each pass, in stream order."""
    bits = _PNG_CHANNELS[colour] * depth
    passes = []
    for x0, y0, dx, dy in _ADAM7 if interlaced else ((0, 0, 1, 1),):
        columns = (width - x0 + dx - 1) // dx if width > x0 else 0
        rows = (height - y0 + dy - 1) // dy if height > y0 else 0
        if columns and rows:  # an empty pass has no bytes at all, not even filter bytes
            passes.append((1 + (columns * bits + 7) // 8, rows))
    return passes


def _check_png_rows(data: bytes, width: int, height: int) -> None:
    """Inflate a PNG's IDAT stream a slice at a time and check each row's filter byte.

    What a full decode would find (a truncated or corrupt stream, an unknown filter), found in
    constant memory: the rows are counted and dropped, never assembled into an image.
    """
    view = memoryview(data)
    pos, inflater = 8, zlib.decompressobj()
    passes: list[tuple[int, int]] | None = None
    starts: list[tuple[int, int, int]] = []  # (offset in the stream, row bytes, rows) per pass
    expected = inflated = 0
    in_idat = False
    try:
        while pos + 8 <= len(data):
            length, kind = struct.unpack_from(">I4s", data, pos)
            body = view[pos + 8 : pos + 8 + length]
            pos += 12 + length
            if kind == b"IHDR" and passes is None and len(body) >= 13:
                depth, colour, _compression, _filter, interlace = body[8:13]
                passes = _png_passes(width, height, depth, colour, bool(interlace))
                for row_bytes, rows in passes:
                    starts.append((expected, row_bytes, rows))
                    expected += row_bytes * rows
            elif kind == b"IDAT" and passes is not None:
                in_idat = True
                chunk: bytes | memoryview = body
                while inflated < expected and not inflater.eof:
                    piece = inflater.decompress(chunk, _INFLATE_STEP)
                    chunk = inflater.unconsumed_tail
                    if not piece and not chunk:
                        break  # this chunk is used up (output still pending comes with the next)
                    _check_filters(piece, inflated, starts)
                    inflated += len(piece)
                if inflated >= expected:
                    return
            elif in_idat or kind == b"IEND":
                break  # the pixel data ends with the first chunk after its IDATs
    except zlib.error as exc:
        raise ImageError(UNDECODABLE, f"corrupt PNG data: {exc}") from exc
    except (KeyError, struct.error) as exc:  # Pillow read the header, so this is rare
        raise ImageError(UNDECODABLE, f"corrupt PNG header: {exc}") from exc
    raise ImageError(
        UNDECODABLE, f"truncated PNG data: {inflated:,} of {expected:,} bytes of pixel rows"
    )


def _check_filters(piece: bytes, offset: int, starts: list[tuple[int, int, int]]) -> None:
    """Check the filter bytes that fall in ``piece`` (which begins ``offset`` bytes into the rows)."""
    end = offset + len(piece)
    for begin, row_bytes, rows in starts:
        stop = min(end, begin + row_bytes * rows)
        if stop <= offset or begin >= end:
            continue
        first = begin if offset <= begin else begin + -(-(offset - begin) // row_bytes) * row_bytes
        filters = piece[first - offset : stop - offset : row_bytes]  # one byte per row, in C
        if filters and max(filters) > _MAX_PNG_FILTER:
            raise ImageError(UNDECODABLE, f"corrupt PNG data: row filter {max(filters)} is not 0-4")
