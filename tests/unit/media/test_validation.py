"""iraas/media/validation.py: validation and decoding of untrusted bytes (images made in memory).

Untrusted images are bounded before and while they decode: which formats, how many pixels, how much
memory per pixel (each decode's peak is measured in tests/integration/media/test_validation.py).
The findings these pin: 43 Pillow formats were enabled, EPS (Ghostscript) among them. Then what a
decode gives: EXIF orientation applied, every mode as RGB, transparency on white, and a large JPEG
decoded at reduced scale, never below the side the classifier asks for.
"""

from __future__ import annotations

import io
import struct
import zlib
from pathlib import Path

import pytest
from PIL import EpsImagePlugin, Image, ImageFile

from iraas.errors import ServiceError
from iraas.media.uploads import UploadLimits, parse_upload
from iraas.media.validation import (
    FORMATS,
    ImageError,
    ImageInfo,
    _jpeg_keeps_coefficients,
    decode_rgb,
    inspect_image,
)
from iraas.web.errors import http_error

LIMIT = 10_000_000


def encode(img: Image.Image, fmt: str, **options) -> bytes:
    buf = io.BytesIO()
    img.save(buf, fmt, **options)
    return buf.getvalue()


def radial_photo(size: tuple[int, int] = (320, 240)) -> Image.Image:
    """A smooth RGB image that compresses like a photo (not a flat colour)."""
    return Image.radial_gradient("L").resize(size).convert("RGB")


def split_image(size: tuple[int, int] = (80, 40)) -> Image.Image:
    """Left half red, right half blue: orientation is visible at a glance."""
    img = Image.new("RGB", size, (255, 0, 0))
    img.paste((0, 0, 255), (size[0] // 2, 0, size[0], size[1]))
    return img


def close_to(pixel: tuple[int, ...], expected: tuple[int, ...], tolerance: int = 40) -> bool:
    return all(abs(a - b) <= tolerance for a, b in zip(pixel, expected, strict=False))


def test_truncated_images_are_not_loaded_leniently() -> None:
    # Pillow's process-wide switch must stay off, or truncated uploads would decode as grey.
    assert ImageFile.LOAD_TRUNCATED_IMAGES is False


@pytest.mark.parametrize(
    ("fmt", "mime"),
    [("JPEG", "image/jpeg"), ("PNG", "image/png"), ("GIF", "image/gif"), ("WEBP", "image/webp")],
)
def test_inspect_accepts_common_formats(fmt: str, mime: str) -> None:
    data = encode(radial_photo((321, 123)), fmt)
    assert inspect_image(data, LIMIT) == ImageInfo(format=fmt, width=321, height=123, mime=mime)


@pytest.mark.parametrize("fmt", ["JPEG", "PNG", "GIF", "WEBP"])
def test_decode_gives_rgb_of_the_same_size(fmt: str) -> None:
    img = decode_rgb(encode(radial_photo((64, 48)), fmt), LIMIT)
    assert img.mode == "RGB"
    assert img.size == (64, 48)


@pytest.mark.parametrize("data", [b"", b"hello, world\n", b"%PDF-1.4\n" + b"x" * 100])
def test_non_images_are_rejected(data: bytes) -> None:
    for check in (inspect_image, decode_rgb):
        with pytest.raises(ImageError) as info:
            check(data, LIMIT)
        assert info.value.code == "not_an_image"
        assert info.value.message


@pytest.mark.parametrize("keep", [0.5, 0.9, 0.999])
def test_truncated_jpeg_is_undecodable(keep: float) -> None:
    data = encode(radial_photo(), "JPEG", quality=90)
    cut = data[: int(len(data) * keep)]
    for check in (inspect_image, decode_rgb):
        with pytest.raises(ImageError) as info:
            check(cut, LIMIT)
        assert info.value.code == "undecodable"


def test_truncated_png_is_undecodable() -> None:
    data = encode(radial_photo(), "PNG")
    with pytest.raises(ImageError) as info:
        inspect_image(data[: len(data) // 2], LIMIT)
    assert info.value.code == "undecodable"


def test_too_many_pixels_names_the_limit_and_the_size() -> None:
    data = encode(radial_photo((320, 240)), "PNG")
    for check in (inspect_image, decode_rgb):
        with pytest.raises(ImageError) as info:
            check(data, 320 * 240 - 1)
        assert info.value.code == "too_many_pixels"
        assert "320x240" in info.value.message
        assert f"{320 * 240 - 1:,}" in info.value.message
    assert inspect_image(data, 320 * 240).width == 320  # the limit itself is allowed


def test_pixel_limit_is_checked_before_decoding() -> None:
    # A truncated file that is also too large must fail on size: the header alone decides.
    data = encode(radial_photo((640, 480)), "JPEG")[:1000]
    with pytest.raises(ImageError) as info:
        inspect_image(data, 1000)
    assert info.value.code == "too_many_pixels"


def test_pillow_global_bomb_guard_maps_to_too_many_pixels(monkeypatch: pytest.MonkeyPatch) -> None:
    # Even if a caller's limit is above Pillow's global one, the error stays ours.
    monkeypatch.setattr(Image, "MAX_IMAGE_PIXELS", 1000)
    with pytest.raises(ImageError) as info:
        inspect_image(encode(radial_photo((100, 100)), "PNG"), LIMIT)
    assert info.value.code == "too_many_pixels"


def test_image_error_is_a_value_error() -> None:
    err = ImageError("undecodable", "broken")
    assert isinstance(err, ValueError)
    assert (err.code, err.message, str(err)) == ("undecodable", "broken", "broken")


@pytest.mark.parametrize("fmt", ["JPEG", "PNG"])
def test_exif_orientation_is_applied(fmt: str) -> None:
    exif = Image.Exif()
    exif[0x0112] = 6  # Orientation: the camera was turned; display rotated 90 degrees clockwise
    data = encode(split_image((80, 40)), fmt, exif=exif.tobytes())
    img = decode_rgb(data, LIMIT)
    assert img.size == (40, 80)
    # Rotating clockwise brings the red left half to the top, the blue right half to the bottom.
    assert close_to(img.getpixel((20, 10)), (255, 0, 0))
    assert close_to(img.getpixel((20, 70)), (0, 0, 255))
    # inspect_image reports the stored size; it does not reorient.
    assert inspect_image(data, LIMIT).width == 80


def test_rgba_transparency_is_flattened_on_white() -> None:
    img = Image.new("RGBA", (10, 10), (0, 0, 0, 0))
    img.paste((255, 0, 0, 255), (0, 0, 5, 10))
    out = decode_rgb(encode(img, "PNG"), LIMIT)
    assert out.mode == "RGB"
    assert out.getpixel((1, 1)) == (255, 0, 0)
    assert out.getpixel((8, 8)) == (255, 255, 255)


def test_palette_with_transparency_is_flattened() -> None:
    img = Image.new("P", (10, 10), 0)
    img.putpalette([0, 255, 0] + [0, 0, 0] * 255)
    img.paste(1, (5, 0, 10, 10))
    out = decode_rgb(encode(img, "GIF", transparency=1), LIMIT)
    assert out.getpixel((1, 1)) == (0, 255, 0)
    assert out.getpixel((8, 8)) == (255, 255, 255)


@pytest.mark.parametrize(
    ("mode", "fill", "fmt", "expected"),
    [
        ("L", 100, "PNG", (100, 100, 100)),
        ("LA", (100, 255), "PNG", (100, 100, 100)),
        ("P", 0, "PNG", (0, 0, 0)),
        ("CMYK", (0, 255, 255, 0), "JPEG", (255, 0, 0)),
        ("1", 1, "PNG", (255, 255, 255)),
    ],
)
def test_other_modes_become_rgb(mode: str, fill, fmt: str, expected: tuple[int, int, int]) -> None:
    out = decode_rgb(encode(Image.new(mode, (16, 16), fill), fmt), LIMIT)
    assert out.mode == "RGB"
    assert close_to(out.getpixel((8, 8)), expected, tolerance=8)


def test_sixteen_bit_grey_png_is_scaled_not_clipped() -> None:
    img = Image.new("I;16", (8, 8), 40000)  # 40000 / 65535 of full scale, about 156 / 255
    out = decode_rgb(encode(img, "PNG"), LIMIT)
    assert out.mode == "RGB"
    assert close_to(out.getpixel((4, 4)), (156, 156, 156), tolerance=1)


def test_animated_gif_uses_the_first_frame() -> None:
    frames = [Image.new("RGB", (8, 8), c) for c in ((255, 0, 0), (0, 0, 255))]
    buf = io.BytesIO()
    frames[0].save(buf, "GIF", save_all=True, append_images=frames[1:], duration=100)
    out = decode_rgb(buf.getvalue(), LIMIT)
    assert close_to(out.getpixel((4, 4)), (255, 0, 0), tolerance=8)


# ---- bounds: which formats, and fewer pixels for a decoder that needs more memory per pixel ---


REPO_ROOT = Path(__file__).resolve().parents[3]


MEMORY_LIMIT = 4_000_000  # the memory cases' pixel limit (as in tests/integration/media/test_validation.py)


def photo_like(size: tuple[int, int], mode: str = "RGB") -> Image.Image:
    """Smooth content in every band, so the encoders do real work (not a flat colour)."""
    grey = Image.linear_gradient("L").resize(size)
    if mode == "L":
        return grey
    bands = {"RGB": 3, "RGBA": 4}[mode]
    return Image.merge(mode, [grey, grey.transpose(Image.Transpose.FLIP_LEFT_RIGHT), grey, grey][:bands])


@pytest.mark.parametrize(
    ("name", "size", "build"),
    [
        ("webp", (1001, 1000), lambda s: encode(Image.new("RGB", s), "WEBP", lossless=True)),
        ("jpeg-progressive", (1265, 1265), lambda s: encode(Image.new("RGB", s), "JPEG", progressive=True, subsampling=0)),
        ("tiff-lzw-one-strip", (1415, 1415),
         lambda s: encode(Image.new("RGB", s), "TIFF", compression="tiff_lzw", tiffinfo={278: s[1]})),
    ],
)
def test_a_decoder_that_needs_more_memory_per_pixel_gets_fewer_pixels(name: str, size: tuple[int, int], build) -> None:
    data = build(size)
    assert size[0] * size[1] < MEMORY_LIMIT  # within the limit for a PNG ...
    for check in (inspect_image, decode_rgb):
        with pytest.raises(ImageError) as refused:  # ... but over this one's share of the budget
            check(data, MEMORY_LIMIT)
        assert refused.value.code == "too_many_pixels" and "more memory per pixel" in refused.value.message


def test_a_multi_scan_jpeg_is_known_by_its_first_scan() -> None:
    def segment(marker: int, body: bytes) -> bytes:
        return bytes([0xFF, marker]) + struct.pack(">H", len(body) + 2) + body

    exif = segment(0xE1, b"Exif\0\0" + segment(0xDA, b"\x01" + b"\0" * 8))  # a thumbnail's scan: skipped
    sof0 = segment(0xC0, b"\x08\x00\x10\x00\x10\x03" + b"\x01\x11\x00\x02\x11\x00\x03\x11\x00")
    one_component = segment(0xDA, b"\x01\x01\x00\x00\x3f\x00")
    all_components = segment(0xDA, b"\x03\x01\x00\x02\x11\x03\x11\x00\x3f\x00")
    soi = b"\xff\xd8"

    assert _jpeg_keeps_coefficients(soi + exif + sof0 + one_component, 3)
    assert not _jpeg_keeps_coefficients(soi + exif + sof0 + all_components, 3)
    assert _jpeg_keeps_coefficients(soi + b"junk" + segment(0xC2, b"\x08") + all_components, 3)


# A minimal EPS: Pillow's EPS plugin would open it and, to decode it, start Ghostscript.
EPS = b"%!PS-Adobe-3.0 EPSF-3.0\n%%BoundingBox: 0 0 16 16\n%%EndComments\nnewpath 0 0 moveto 16 16 lineto stroke\n%%EOF\n"


def test_an_eps_file_is_not_an_image_and_ghostscript_is_never_started(monkeypatch: pytest.MonkeyPatch) -> None:
    started: list[object] = []

    def ghostscript(*args: object, **kwargs: object) -> None:
        started.append(args)
        raise OSError("Ghostscript must not run")

    monkeypatch.setattr(EpsImagePlugin, "Ghostscript", ghostscript)
    for check in (inspect_image, decode_rgb):
        with pytest.raises(ImageError) as refused:
            check(EPS, MEMORY_LIMIT)
        assert refused.value.code == "not_an_image"
    with pytest.raises(ServiceError) as upload:
        parse_upload(EPS, "image/x-eps", "drawing.eps", UploadLimits())
    assert (http_error(upload.value).status, upload.value.code) == (400, "not_an_image")
    assert started == []


@pytest.mark.parametrize("fmt", ["PPM", "ICO", "PCX", "SGI", "TGA", "QOI"])
def test_formats_pillow_reads_but_we_do_not_are_not_images(fmt: str) -> None:
    data = encode(photo_like((32, 32)), fmt)
    Image.open(io.BytesIO(data)).load()  # Pillow itself would read it
    for check in (inspect_image, decode_rgb):
        with pytest.raises(ImageError) as refused:
            check(data, MEMORY_LIMIT)
        assert refused.value.code == "not_an_image"


@pytest.mark.parametrize(("fmt", "options"), [
    ("JPEG", {}), ("PNG", {}), ("WEBP", {}), ("GIF", {}), ("BMP", {}), ("TIFF", {}), ("TIFF", {"compression": "tiff_lzw"}),
])
def test_each_allowed_format_is_read(fmt: str, options: dict) -> None:
    data = encode(photo_like((48, 32)), fmt, **options)
    assert fmt in FORMATS
    assert inspect_image(data, MEMORY_LIMIT).format == fmt
    assert decode_rgb(data, MEMORY_LIMIT).size == (48, 32)


def test_a_corrupt_or_truncated_png_is_undecodable_in_the_web_tier_too() -> None:
    data = encode(photo_like((200, 100)), "PNG")
    start = data.index(b"IDAT") + 4
    flipped = bytearray(data)
    flipped[start + 2 : start + 40] = bytes(38)  # inside the deflate stream
    for broken in (data[: start + 100], bytes(flipped)):
        with pytest.raises(ImageError) as refused:
            inspect_image(broken, MEMORY_LIMIT)
        assert refused.value.code == "undecodable"


@pytest.mark.parametrize("interlace", [False, True])
def test_the_web_tier_accepts_what_the_worker_decodes(interlace: bool) -> None:
    # Every PNG layout the row check must count right: bit depths, palettes, Adam7 passes.
    for img in (photo_like((33, 17)), photo_like((33, 17), "RGBA"), photo_like((5, 3), "L").convert("1"),
                photo_like((33, 17)).convert("P"), Image.new("I;16", (7, 9), 1234), Image.new("LA", (1, 1))):
        data = _interlaced(img) if interlace else encode(img, "PNG")
        assert inspect_image(data, MEMORY_LIMIT).width == img.width
        assert decode_rgb(data, MEMORY_LIMIT).size == img.size


def _interlaced(img: Image.Image) -> bytes:
    """``img`` as an Adam7-interlaced PNG (Pillow writes none; the rows are laid out by hand)."""
    mode = {"RGB": (2, 3), "RGBA": (6, 4), "L": (0, 1), "I;16": (0, 2), "LA": (4, 2)}
    img = img.convert("L") if img.mode in ("1", "P") else img
    colour, width = mode[img.mode]
    raw = img.tobytes("raw", "I;16B") if img.mode == "I;16" else img.tobytes()
    depth = 16 if img.mode == "I;16" else 8
    rows = bytearray()
    line = img.width * width
    for x0, y0, dx, dy in ((0, 0, 8, 8), (4, 0, 8, 8), (0, 4, 4, 8), (2, 0, 4, 4), (0, 2, 2, 4), (1, 0, 2, 2), (0, 1, 1, 2)):
        if x0 >= img.width or y0 >= img.height:
            continue
        for y in range(y0, img.height, dy):
            rows.append(0)
            for x in range(x0, img.width, dx):
                rows += raw[y * line + x * width : y * line + (x + 1) * width]

    def chunk(kind: bytes, body: bytes) -> bytes:
        return struct.pack(">I", len(body)) + kind + body + struct.pack(">I", zlib.crc32(kind + body))

    header = struct.pack(">IIBBBBB", img.width, img.height, depth, colour, 0, 0, 1)
    return (b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", zlib.compress(bytes(rows)))
            + chunk(b"IEND", b""))


def test_only_the_validation_module_opens_images() -> None:
    # Image.open anywhere else would try every plugin Pillow has; OpenCV's imread reads its own list.
    sources = [*REPO_ROOT.joinpath("iraas").rglob("*.py"), *REPO_ROOT.joinpath("functions").rglob("*.py")]
    openers = sorted(
        str(path.relative_to(REPO_ROOT)) for path in sources
        if any(call in path.read_text() for call in ("Image.open(", "imread(", "imdecode("))
    )
    assert openers == ["iraas/media/validation.py"]


def test_an_rle_bmp_is_not_read() -> None:
    # Pillow decodes BMP's RLE in Python, a byte pair at a time: a 10 MiB upload of one-pixel runs
    # is seconds of CPU. A 2 x 1 RLE8 image: two runs of one pixel, end of line, end of bitmap.
    pixels = bytes([1, 7, 1, 7, 0, 0, 0, 1])
    info = struct.pack("<IiiHHIIiiII", 40, 2, 1, 1, 8, 1, len(pixels), 2835, 2835, 256, 0)
    offset = 14 + len(info) + 1024
    bmp = b"BM" + struct.pack("<IHHI", offset + len(pixels), 0, 0, offset) + info + bytes(1024) + pixels
    assert Image.open(io.BytesIO(bmp)).tile[0].codec_name == "bmp_rle"
    for check in (inspect_image, decode_rgb):
        with pytest.raises(ImageError) as refused:
            check(bmp, MEMORY_LIMIT)
        assert refused.value.code == "not_an_image" and "RLE" in refused.value.message


# ---- reduced-scale JPEG decoding ------------------------------------------------------------


LARGE_LIMIT = 50_000_000


def jpeg(img: Image.Image, **options) -> bytes:
    buf = io.BytesIO()
    img.save(buf, "JPEG", quality=95, **options)
    return buf.getvalue()


def test_large_jpeg_is_decoded_at_reduced_scale_never_below_min_side() -> None:
    data = jpeg(split_image((2400, 1200)))
    assert decode_rgb(data, LARGE_LIMIT).size == (2400, 1200)
    assert decode_rgb(data, LARGE_LIMIT, min_side=256).size == (600, 300)  # 1/4: 1/8 would give 150 < 256
    assert decode_rgb(data, LARGE_LIMIT, min_side=600).size == (1200, 600)  # 1/2: the short side stays 600
    assert decode_rgb(data, LARGE_LIMIT, min_side=601).size == (2400, 1200)  # 1/2 would give 600 < 601
    assert decode_rgb(jpeg(split_image((300, 280))), LARGE_LIMIT, min_side=256).size == (300, 280)


def test_reduced_scale_keeps_exif_orientation() -> None:
    exif = Image.Exif()
    exif[0x0112] = 6  # display rotated 90 degrees clockwise
    img = decode_rgb(jpeg(split_image((2400, 1200)), exif=exif.tobytes()), LARGE_LIMIT, min_side=256)
    assert img.size == (300, 600)
    red, blue = img.getpixel((150, 100)), img.getpixel((150, 500))
    assert red[0] > 200 and red[2] < 60  # the left (red) half is now on top
    assert blue[2] > 200 and blue[0] < 60


def test_min_side_leaves_other_formats_at_full_size() -> None:
    buf = io.BytesIO()
    split_image((2400, 1200)).save(buf, "PNG")
    assert decode_rgb(buf.getvalue(), LARGE_LIMIT, min_side=256).size == (2400, 1200)
