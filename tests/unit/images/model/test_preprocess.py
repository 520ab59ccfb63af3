"""iraas/images/model/preprocess.py: resize, centre crop and normalisation geometry."""

from __future__ import annotations

import io

import numpy as np
import pytest
from PIL import Image

from iraas.images.model.preprocess import (
    batch,
    crop_box,
    decode_pixels,
    normalise,
    preprocess,
    resized_size,
    to_nchw_float,
    to_nchw_uint8,
)


def test_output_is_the_uint8_pixels_the_model_takes() -> None:
    rng = np.random.default_rng(0)
    img = Image.fromarray(rng.integers(0, 256, (300, 400, 3), dtype=np.uint8))
    x = preprocess(img)
    assert x.shape == (224, 224, 3)  # height x width x RGB: the model files' input layout
    assert x.dtype == np.uint8
    assert x.flags["C_CONTIGUOUS"]


@pytest.mark.parametrize(
    ("colour", "expected"),
    [((0, 0, 0), (-1, -1, -1)), ((255, 255, 255), (1, 1, 1)), ((255, 0, 0), (1, -1, -1))],
)
def test_normalise_is_the_models_mean_half_std_half_channels_first(colour, expected) -> None:
    x = normalise(preprocess(Image.new("RGB", (300, 260), colour)))
    assert x.shape == (3, 224, 224) and x.dtype == np.float32
    for channel, value in enumerate(expected):
        np.testing.assert_allclose(x[channel], value, atol=1e-6)


def test_mid_grey_maps_to_about_zero() -> None:
    x = normalise(batch([preprocess(Image.new("RGB", (256, 256), (128, 128, 128)))]))
    assert x.shape == (1, 3, 224, 224)
    np.testing.assert_allclose(x, 128 / 127.5 - 1, atol=1e-6)


@pytest.mark.parametrize(
    ("size", "expected"),
    [
        ((500, 375), (341, 256)),
        ((375, 500), (256, 341)),
        ((256, 256), (256, 256)),
        ((100, 50), (512, 256)),  # small images are scaled up
        ((1000, 999), (256, 256)),  # int() truncation, like torchvision
    ],
)
def test_shorter_side_becomes_256(size, expected) -> None:
    assert resized_size(*size) == expected


def test_crop_box_is_centred() -> None:
    assert crop_box(256, 256) == (16, 16, 240, 240)
    assert crop_box(341, 256) == (58, 16, 282, 240)  # (341 - 224) / 2 = 58.5 rounds to even


def test_crop_takes_the_centre_without_resampling() -> None:
    # Shorter side already 256, so no resize: the crop is pure geometry. R encodes x, G encodes y.
    xs, ys = np.meshgrid(np.arange(512), np.arange(256))
    pixels = np.stack([xs % 256, ys, np.zeros_like(xs)], axis=-1).astype(np.uint8)
    x = preprocess(Image.fromarray(pixels))
    left, top = (512 - 224) // 2, (256 - 224) // 2
    np.testing.assert_array_equal(x[0, :, 0], (np.arange(224) + left) % 256)
    np.testing.assert_array_equal(x[:, 0, 1], np.arange(224) + top)


def test_resize_then_crop_geometry_on_a_pattern() -> None:
    # 600x300, red for x < 200 and green beyond. Scaled to 512x256 the edge sits at x = 170.7;
    # the crop starts at 144, so in the output the edge is at column ~26.7.
    img = Image.new("RGB", (600, 300), (0, 255, 0))
    img.paste((255, 0, 0), (0, 0, 200, 300))
    x = preprocess(img)
    red = x[112, :, 0] > 127
    assert red[:25].all()
    assert not red[29:].any()
    # Vertically nothing changes: a uniform column stays uniform after resize and crop.
    np.testing.assert_array_equal(x[:, 100, 1], 255)


def test_non_rgb_input_is_converted() -> None:
    x = preprocess(Image.new("L", (256, 300), 255))
    assert x.shape == (224, 224, 3)
    np.testing.assert_array_equal(x, 255)


def test_batch_stacks_and_handles_empty() -> None:
    arrays = [preprocess(Image.new("RGB", (256, 256), (i, i, i))) for i in (0, 255, 7)]
    b = batch(arrays)
    assert b.shape == (3, 224, 224, 3)
    assert b.dtype == np.uint8
    np.testing.assert_array_equal(b[1], arrays[1])
    assert batch([]).shape == (0, 224, 224, 3)
    assert batch([], crop=260).shape == (0, 260, 260, 3)  # Lite2


def _jpeg(width: int, height: int) -> bytes:
    out = io.BytesIO()
    Image.new("RGB", (width, height), (120, 60, 30)).save(out, "JPEG")
    return out.getvalue()


def test_a_photo_under_twice_the_resize_target_decodes_in_full() -> None:
    # 375 < 2 x 256: a 3/4 scale would keep both sides >= 256 but takes longer than a full decode.
    assert decode_pixels(_jpeg(500, 375), 10**8, 256).shape == (375, 500, 3)


def test_a_large_photo_decodes_at_a_reduced_scale_keeping_the_resize_target() -> None:
    height, width, _ = decode_pixels(_jpeg(1600, 1200), 10**8, 256).shape
    assert 256 <= min(height, width) <= 600 and (width, height) == (1600 * height // 1200, height)


def test_an_own_models_input_is_channels_first_normalised_per_channel() -> None:
    """torchvision's ToTensor + Normalize(mean, std), on a batch of uint8 pixels (N, H, W, 3)."""
    rng = np.random.default_rng(0)
    pixels = rng.integers(0, 256, (2, 5, 4, 3), dtype=np.uint8)
    mean, std = (0.485, 0.456, 0.406), (0.229, 0.224, 0.225)
    x = to_nchw_float(pixels, mean, std)
    assert x.shape == (2, 3, 5, 4) and x.dtype == np.float32 and x.flags.c_contiguous
    for c in range(3):
        expected = (pixels[..., c].astype(np.float64) / 255 - mean[c]) / std[c]
        assert np.abs(x[:, c] - expected).max() < 1e-5
    raw = to_nchw_uint8(pixels)
    assert raw.dtype == np.uint8 and raw.flags.c_contiguous and np.array_equal(raw, pixels.transpose(0, 3, 1, 2))
