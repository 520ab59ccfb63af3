"""Turn a decoded image into the network's input tensor (Pillow + numpy, no torch).

The recipe is the one the EfficientNet-Lite0 weights were evaluated with: resize the shorter
side to 256 with bicubic filtering, centre-crop 224x224, scale to [-1, 1] with mean = std = 0.5
per channel, channels first. The arithmetic follows torchvision's ``Resize(256)`` and
``CenterCrop(224)`` exactly, so results match a torchvision pipeline.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
from PIL import Image

RESIZE = 256
CROP = 224
MEAN = 0.5
STD = 0.5
INPUT_SHAPE = (3, CROP, CROP)


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


def preprocess(img: Image.Image) -> np.ndarray:
    """One RGB image -> float32 array of shape (3, 224, 224), values in [-1, 1]."""
    if img.mode != "RGB":
        img = img.convert("RGB")
    size = resized_size(*img.size)
    if size != img.size:
        img = img.resize(size, Image.Resampling.BICUBIC)
    img = img.crop(crop_box(*img.size))
    pixels = np.asarray(img, dtype=np.float32)  # (224, 224, 3), 0..255
    normalised = (pixels / 255.0 - MEAN) / STD
    return np.ascontiguousarray(normalised.transpose(2, 0, 1))


def batch(arrays: Sequence[np.ndarray]) -> np.ndarray:
    """Stack preprocessed arrays into one (N, 3, 224, 224) float32 batch (N may be 0)."""
    if len(arrays) == 0:
        return np.zeros((0, *INPUT_SHAPE), dtype=np.float32)
    return np.stack(arrays).astype(np.float32, copy=False)
