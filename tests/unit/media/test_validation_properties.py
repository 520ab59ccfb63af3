"""Fuzzing the image validator (iraas/media/validation.py): mutated real images never raise anything but ImageError, and never
pass with more pixels than the limit.

Seeds are small images of every accepted format made with Pillow here (baseline and progressive
JPEG, plain, interlaced and palette PNG, GIF, BMP, raw and compressed TIFF, WebP); hypothesis
flips, overwrites, inserts, deletes and truncates their bytes, with a fixed budget of examples.
"""

from __future__ import annotations

import io
import struct
import zlib
from collections.abc import Callable
from typing import TypeVar

import pytest
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st
from PIL import Image

from iraas.errors import ServiceError
from iraas.media.uploads import UploadLimits, parse_upload
from iraas.media.validation import (
    FORMATS,
    NOT_AN_IMAGE,
    TOO_MANY_PIXELS,
    UNDECODABLE,
    ImageError,
    decode_rgb,
    inspect_image,
)
from iraas.web.errors import http_error

pytestmark = [
    pytest.mark.timeout(120),
    # A mutated header may claim more pixels than Pillow's own guard likes: it warns, we refuse.
    pytest.mark.filterwarnings("ignore::PIL.Image.DecompressionBombWarning"),
    # Pillow's TIFF reader warns about the broken tags it skips; the outcome is what is checked.
    pytest.mark.filterwarnings("ignore::UserWarning:PIL.TiffImagePlugin"),
]

T = TypeVar("T")
CODES = {NOT_AN_IMAGE, UNDECODABLE, TOO_MANY_PIXELS}
FUZZ = settings(
    max_examples=400,
    deadline=None,
    derandomize=True,
    database=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)
# A limit a little above the seeds' 24 x 16 = 384 pixels, so a header mutated to claim more is refused.
MAX_PIXELS = 4096


def _encode(img: Image.Image, fmt: str, **options: object) -> bytes:
    out = io.BytesIO()
    img.save(out, fmt, **options)
    return out.getvalue()


def _picture(mode: str = "RGB") -> Image.Image:
    """24 x 16 with content in every band (a flat colour would leave the decoders little to do)."""
    grey = Image.linear_gradient("L").resize((24, 16))
    rgb = Image.merge("RGB", [grey, grey.transpose(Image.Transpose.FLIP_LEFT_RIGHT), grey.rotate(180)])
    return rgb if mode == "RGB" else rgb.convert(mode)


def _seeds() -> dict[str, bytes]:
    rgb = _picture()
    return {
        "jpeg": _encode(rgb, "JPEG", quality=80),
        "jpeg-progressive": _encode(rgb, "JPEG", quality=80, progressive=True),
        "png": _encode(rgb, "PNG"),
        "png-interlaced": _encode(rgb, "PNG", interlace=1),
        "png-palette": _encode(_picture("P"), "PNG"),
        "png-rgba": _encode(_picture("RGBA"), "PNG"),
        "gif": _encode(_picture("P"), "GIF"),
        "bmp": _encode(rgb, "BMP"),
        "tiff": _encode(rgb, "TIFF"),
        "tiff-deflate": _encode(rgb, "TIFF", compression="tiff_adobe_deflate"),
        "webp": _encode(rgb, "WEBP", quality=80),
    }


SEEDS = _seeds()


@st.composite
def mutated_images(draw: st.DrawFn) -> bytes:
    """A seed image with one to four byte-level mutations."""
    data = bytearray(SEEDS[draw(st.sampled_from(sorted(SEEDS)))])
    for _ in range(draw(st.integers(1, 4))):
        if not data:
            break
        pos = draw(st.integers(0, len(data) - 1))
        op = draw(st.sampled_from(["flip", "set", "big", "insert", "delete", "truncate"]))
        if op == "flip":
            data[pos] ^= 1 << draw(st.integers(0, 7))
        elif op == "set":
            data[pos] = draw(st.sampled_from([0x00, 0x01, 0x7F, 0x80, 0xFF]))
        elif op == "big":  # a width, height, length or offset field made huge (or zero)
            width = draw(st.sampled_from([2, 4]))
            value = draw(st.sampled_from([0, 1, 0x7FFF, 0xFFFF, 0x7FFFFFFF, 0xFFFFFFFF]))
            order = draw(st.sampled_from(["big", "little"]))
            data[pos : pos + width] = (value & (256**width - 1)).to_bytes(width, order)
        elif op == "insert":
            data[pos:pos] = draw(st.binary(min_size=1, max_size=16))
        elif op == "delete":
            del data[pos : pos + draw(st.integers(1, 64))]
        else:
            del data[pos:]
    return bytes(data)


def _png(width: int, height: int, idat: bytes = b"") -> bytes:
    """A PNG whose IHDR (with a correct CRC) claims ``width`` x ``height``, then ``idat`` as its pixels."""

    def chunk(kind: bytes, body: bytes) -> bytes:
        return struct.pack(">I", len(body)) + kind + body + struct.pack(">I", zlib.crc32(kind + body))

    header = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", idat) + chunk(b"IEND", b"")


def _gif(width: int, height: int) -> bytes:
    """A GIF header and image descriptor claiming ``width`` x ``height``, with almost no pixel data."""
    screen = b"GIF89a" + struct.pack("<HHBBB", width, height, 0x80, 0, 0) + bytes(6)  # 2-colour table
    descriptor = b"," + struct.pack("<HHHHB", 0, 0, width, height, 0) + b"\x02\x02\x44\x01\x00;"
    return screen + descriptor


def _bmp(width: int, height: int) -> bytes:
    """An uncompressed 24-bit BMP header claiming ``width`` x ``height``, without its pixels."""
    info = struct.pack("<IiiHHIIiiII", 40, width, height, 1, 24, 0, 0, 2835, 2835, 0, 0)
    return b"BM" + struct.pack("<IHHI", 14 + len(info), 0, 0, 14 + len(info)) + info


def _check_info_or_error(call: Callable[..., T], *args: object) -> T | None:
    """``call(*args)``, or None where it raised an ImageError of one of the three codes."""
    try:
        return call(*args)
    except ImageError as exc:
        assert exc.code in CODES, exc
        return None


@pytest.mark.parametrize("name", sorted(SEEDS))
def test_every_seed_is_an_accepted_image(name: str) -> None:
    """The fuzzing starts from images the validator accepts, so mutations explore past the header."""
    info = inspect_image(SEEDS[name], MAX_PIXELS)
    assert (info.width, info.height) == (24, 16)
    assert decode_rgb(SEEDS[name], MAX_PIXELS).size == (24, 16)


@FUZZ
@given(data=mutated_images(), max_pixels=st.sampled_from([MAX_PIXELS, 384, 100]))
@example(data=_png(0x7FFFFFFF, 0x7FFFFFFF), max_pixels=MAX_PIXELS)
@example(data=SEEDS["png"][:60], max_pixels=MAX_PIXELS)
@example(data=b"", max_pixels=MAX_PIXELS)
def test_inspect_image_accepts_within_the_limit_or_raises_image_error(data: bytes, max_pixels: int) -> None:
    """Whatever the bytes: an ImageInfo of an accepted format and at most max_pixels, or an ImageError
    with one of its three codes; never another exception."""
    info = _check_info_or_error(inspect_image, data, max_pixels)
    if info is not None:
        assert info.format in (*FORMATS, "MPO")
        assert 1 <= info.width * info.height <= max_pixels
        assert info.mime.startswith("image/")


@FUZZ
@given(data=mutated_images(), min_side=st.sampled_from([None, 4, 8]))
def test_decode_rgb_gives_rgb_within_the_limit_or_raises_image_error(data: bytes, min_side: int | None) -> None:
    """The worker's full decode: an RGB image of at most the limit's pixels, or an ImageError."""
    img = _check_info_or_error(decode_rgb, data, MAX_PIXELS, min_side)
    if img is not None:
        assert img.mode == "RGB"
        width, height = img.size
        assert 1 <= width * height <= MAX_PIXELS


@FUZZ
@given(data=mutated_images())
def test_what_the_web_tier_accepts_the_worker_decodes(data: bytes) -> None:
    """inspect_image proves the pixel data decodes (a PNG's rows, a JPEG at 1/8 scale): whatever it
    accepts, decode_rgb decodes at the same size, so an accepted upload never fails in the worker as
    undecodable."""
    info = _check_info_or_error(inspect_image, data, MAX_PIXELS)
    if info is not None:
        img = decode_rgb(data, MAX_PIXELS)
        assert sorted(img.size) == sorted((info.width, info.height))


@settings(max_examples=60, deadline=None, derandomize=True, database=None)
@given(
    kind=st.sampled_from(["png", "gif", "bmp"]),
    width=st.integers(1, 0xFFFF),
    height=st.integers(1, 0xFFFF),
)
def test_a_header_claiming_too_many_pixels_is_refused_before_decoding(kind: str, width: int, height: int) -> None:
    """The pixel limit is checked from the header alone: these files hold (almost) no pixel data, so a
    decode would fail as undecodable; they are too_many_pixels when the header claims more than the
    limit."""
    data = {"png": _png, "gif": _gif, "bmp": _bmp}[kind](width, height)
    try:
        inspect_image(data, MAX_PIXELS)
    except ImageError as exc:
        if width * height > MAX_PIXELS:
            assert exc.code == TOO_MANY_PIXELS, exc
        else:
            assert exc.code in CODES
    else:
        assert width * height <= MAX_PIXELS


@FUZZ
@given(data=mutated_images(), content_type=st.sampled_from(["image/png", "image/jpeg", "application/octet-stream"]))
def test_a_raw_upload_of_any_bytes_is_an_upload_or_a_4xx(data: bytes, content_type: str) -> None:
    """What POST /v1/images answers for a raw body: an Upload within the limits, or a 400/413 ServiceError."""
    limits = UploadLimits(max_image_bytes=64 * 1024, max_image_pixels=MAX_PIXELS)
    try:
        upload = parse_upload(data, content_type, "fuzz.img", limits)
    except ServiceError as exc:
        assert http_error(exc).status in (400, 413), exc
        assert exc.code in {"no_file", "too_large", *CODES}, exc
    else:
        assert upload.data == data
        assert upload.info.width * upload.info.height <= MAX_PIXELS
