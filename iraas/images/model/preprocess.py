"""Turn an encoded image into the network's input: uint8 RGB pixels (libjpeg-turbo via simplejpeg,
Pillow for other formats, OpenCV's resize; no torch).

The recipe is the one the EfficientNet-Lite weights were evaluated with: resize the shorter
side to the crop size + 32 (256 for Lite0's 224), centre-crop, scale to [-1, 1] with
mean = std = 0.5 per channel, channels first. The geometry follows torchvision's ``Resize(256)``
and ``CenterCrop(224)`` (only the cropped region is resampled, bilinear, from the nearest whole
pixels); the scaling and the layout are the model's first operations
(:class:`.network.PixelInput`), so this returns uint8 pixels, height x width x RGB.
Lite2 (260x260 input) resizes to 292, TF's ``crop_padding = 32`` rule for every EfficientNet.

Nearly all of the time is libjpeg's decoding; the classifier path's images/s against inference
alone (``bench.classifier``) shows what the rest costs.
"""

from __future__ import annotations

from collections.abc import Sequence

import cv2
import numpy as np
import simplejpeg
from PIL import Image

from iraas.media.validation import decode_rgb, is_upright_jpeg

# One thread: callers decode and resize a batch per core themselves (the classifier's pools,
# iraas classify's lanes), and OpenCV's own pool would only add threads that wait.
cv2.setNumThreads(1)

RESIZE = 256
CROP = 224
MEAN = 0.5
STD = 0.5
CROP_PADDING = RESIZE - CROP  # TF's EfficientNet eval rule: resize to crop + 32, centre-crop


def resize_for(crop: int) -> int:
    """The shorter side to resize to before a ``crop`` x ``crop`` centre crop (256 for 224)."""
    return crop + CROP_PADDING


def resized_size(width: int, height: int, short: int = RESIZE) -> tuple[int, int]:
    """(width, height) after scaling the shorter side to ``short``, as torchvision computes it."""
    if width <= height:
        return short, int(short * height / width)
    return int(short * width / height), short


def crop_box(width: int, height: int, size: int = CROP) -> tuple[int, int, int, int]:
    """The centred ``size`` x ``size`` box (left, top, right, bottom), rounded like torchvision."""
    left = int(round((width - size) / 2.0))
    top = int(round((height - size) / 2.0))
    return left, top, left + size, top + size


def decode_pixels(data: bytes, max_pixels: int, min_side: int) -> np.ndarray:
    """Decode an encoded image into uint8 RGB pixels (height, width, 3); raises ImageError.

    An upright YCbCr or grey JPEG (nearly every photo) is decoded by libjpeg-turbo straight into
    the array (simplejpeg), at the smallest of its n/8 DCT scales that keeps both sides >=
    ``min_side`` if that is half size or less, else in full (:func:`_dct_scale`); anything else, or
    a JPEG it refuses, goes through Pillow
    (:func:`iraas.media.validation.decode_rgb`: every format, mode and EXIF rotation). Either way
    the pixel limit is checked from the header first.
    """
    if is_upright_jpeg(data, max_pixels):
        try:
            return simplejpeg.decode_jpeg(data, colorspace="RGB", **_dct_scale(data, min_side))
        except ValueError:
            pass  # strict about what libjpeg only warns of (a truncated file): Pillow gives the verdict
    img = decode_rgb(data, max_pixels, min_side=min_side)
    return np.asarray(img)


def _dct_scale(data: bytes, min_side: int) -> dict[str, int]:
    """simplejpeg's arguments for decoding at the smallest n/8 scale that keeps both sides >=
    ``min_side``, where that is half size or less; none (a full decode) otherwise. libjpeg-turbo's
    scales between 1/2 and 1 (5/8 to 7/8) took about a tenth longer than a full decode on the shared
    500 x 375 photos: entropy decoding is most of the work, and only those scales lack SIMD code."""
    height, width = simplejpeg.decode_jpeg_header(data)[:2]
    if min(height, width) < 2 * min_side:
        return {}
    return {"min_height": min_side, "min_width": min_side}


def crop_and_resize(pixels: np.ndarray, crop: int = CROP, resize: int | None = None) -> np.ndarray:
    """RGB pixels (height, width, 3) -> the centre crop the model takes, uint8 (crop, crop, 3).

    The geometry of resizing the shorter side to ``resize`` (default ``resize_for(crop)``: the
    built-in models' rule; a model of one's own says its own) and cropping the centre, done as one
    resample of just the part of the picture that the crop keeps (OpenCV, bilinear).
    """
    height, width = pixels.shape[:2]
    resized_w, resized_h = resized_size(width, height, short=resize_for(crop) if resize is None else resize)
    left, top, right, bottom = crop_box(resized_w, resized_h, size=crop)
    if (resized_w, resized_h) == (width, height):
        return np.ascontiguousarray(pixels[top:bottom, left:right])
    sx, sy = width / resized_w, height / resized_h
    region = pixels[round(top * sy) : round(bottom * sy), round(left * sx) : round(right * sx)]
    return cv2.resize(region, (crop, crop), interpolation=cv2.INTER_LINEAR)


def preprocess(img: Image.Image, crop: int = CROP, resize: int | None = None) -> np.ndarray:
    """One decoded image -> its uint8 RGB pixels, shape (crop, crop, 3): what the model files take.

    The scaling to [-1, 1] and the channels-first layout happen inside the model
    (:class:`.network.PixelInput`), so this is one resample and no float pass.
    """
    if img.mode != "RGB":
        img = img.convert("RGB")
    return crop_and_resize(np.asarray(img), crop, resize)


def normalise(pixels: np.ndarray) -> np.ndarray:
    """What the model does to its input first: uint8 (..., H, W, 3) -> float32 (..., 3, H, W) in [-1, 1].

    For tests and tools that feed the bare network; the classifier never calls it.
    """
    scaled = pixels.astype(np.float32) * (1 / (255.0 * STD)) - MEAN / STD
    return np.ascontiguousarray(np.moveaxis(scaled, -1, -3))


def to_nchw_uint8(pixels: np.ndarray) -> np.ndarray:
    """A (N, H, W, 3) uint8 batch as a model of one's own with uint8 input takes it: (N, 3, H, W) uint8."""
    return np.ascontiguousarray(pixels.transpose(0, 3, 1, 2))


def to_nchw_float(pixels: np.ndarray, mean: Sequence[float], std: Sequence[float]) -> np.ndarray:
    """A (N, H, W, 3) uint8 batch as a model of one's own with float input takes it: (N, 3, H, W)
    float32, each channel scaled to 0..1, less ``mean``, over ``std`` (torchvision's Normalize)."""
    scale = np.array([1.0 / (255.0 * s) for s in std], dtype=np.float32).reshape(1, 3, 1, 1)
    offset = np.array([m / s for m, s in zip(mean, std, strict=True)], dtype=np.float32).reshape(1, 3, 1, 1)
    x = pixels.transpose(0, 3, 1, 2).astype(np.float32, order="C")  # a fresh array, channels first in memory
    x *= scale
    x -= offset
    return x


def batch(arrays: Sequence[np.ndarray], crop: int = CROP) -> np.ndarray:
    """Stack preprocessed arrays into one (N, crop, crop, 3) uint8 batch (N may be 0)."""
    if len(arrays) == 0:
        return np.zeros((0, crop, crop, 3), dtype=np.uint8)
    return np.stack(arrays)
