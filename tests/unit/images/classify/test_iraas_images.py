"""iraas.media.validation: validation and decoding of untrusted bytes (images generated in memory)."""

from __future__ import annotations

import io

import pytest
from PIL import Image, ImageFile

from iraas.media.validation import ImageError, ImageInfo, decode_rgb, inspect_image

LIMIT = 10_000_000


def encode(img: Image.Image, fmt: str, **options) -> bytes:
    buf = io.BytesIO()
    img.save(buf, fmt, **options)
    return buf.getvalue()


def photo_like(size: tuple[int, int] = (320, 240)) -> Image.Image:
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
    data = encode(photo_like((321, 123)), fmt)
    assert inspect_image(data, LIMIT) == ImageInfo(format=fmt, width=321, height=123, mime=mime)


@pytest.mark.parametrize("fmt", ["JPEG", "PNG", "GIF", "WEBP"])
def test_decode_gives_rgb_of_the_same_size(fmt: str) -> None:
    img = decode_rgb(encode(photo_like((64, 48)), fmt), LIMIT)
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
    data = encode(photo_like(), "JPEG", quality=90)
    cut = data[: int(len(data) * keep)]
    for check in (inspect_image, decode_rgb):
        with pytest.raises(ImageError) as info:
            check(cut, LIMIT)
        assert info.value.code == "undecodable"


def test_truncated_png_is_undecodable() -> None:
    data = encode(photo_like(), "PNG")
    with pytest.raises(ImageError) as info:
        inspect_image(data[: len(data) // 2], LIMIT)
    assert info.value.code == "undecodable"


def test_too_many_pixels_names_the_limit_and_the_size() -> None:
    data = encode(photo_like((320, 240)), "PNG")
    for check in (inspect_image, decode_rgb):
        with pytest.raises(ImageError) as info:
            check(data, 320 * 240 - 1)
        assert info.value.code == "too_many_pixels"
        assert "320x240" in info.value.message
        assert f"{320 * 240 - 1:,}" in info.value.message
    assert inspect_image(data, 320 * 240).width == 320  # the limit itself is allowed


def test_pixel_limit_is_checked_before_decoding() -> None:
    # A truncated file that is also too large must fail on size: the header alone decides.
    data = encode(photo_like((640, 480)), "JPEG")[:1000]
    with pytest.raises(ImageError) as info:
        inspect_image(data, 1000)
    assert info.value.code == "too_many_pixels"


def test_pillow_global_bomb_guard_maps_to_too_many_pixels(monkeypatch: pytest.MonkeyPatch) -> None:
    # Even if a caller's limit is above Pillow's global one, the error stays ours.
    monkeypatch.setattr(Image, "MAX_IMAGE_PIXELS", 1000)
    with pytest.raises(ImageError) as info:
        inspect_image(encode(photo_like((100, 100)), "PNG"), LIMIT)
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
