"""Turn a decoded image into the network's input tensor (Pillow + numpy, no torch).

The recipe is the one the EfficientNet-Lite weights were evaluated with: resize the shorter
side to the crop size + 32 with bicubic filtering (256 for Lite0's 224), centre-crop, scale to
[-1, 1] with mean = std = 0.5 per channel, channels first. The arithmetic follows torchvision's
``Resize(256)`` and ``CenterCrop(224)`` exactly, so results match a torchvision pipeline up to the resampling of
the crop's edge pixels (only the cropped region is resampled; mean difference ~1e-4 of the range).
Lite2 (260x260 input) resizes to 292, TF's ``crop_padding = 32`` rule for every EfficientNet.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
from PIL import Image

RESIZE = 256
CROP = 224
MEAN = 0.5
STD = 0.5
CROP_PADDING = RESIZE - CROP  # TF's EfficientNet eval rule: resize to crop + 32, centre-crop
INPUT_SHAPE = (3, CROP, CROP)


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


def preprocess(img: Image.Image, crop: int = CROP) -> np.ndarray:
    """One RGB image -> float32 array of shape (3, crop, crop), values in [-1, 1]."""
    if img.mode != "RGB":
        img = img.convert("RGB")
    width, height = resized_size(*img.size, short=resize_for(crop))
    left, top, right, bottom = crop_box(width, height, size=crop)
    if (width, height) == img.size:
        img = img.crop((left, top, right, bottom))
    else:
        # Resample only the part of the photo the centre crop keeps, straight to crop x crop: the
        # same geometry as resizing the whole photo and then cropping, for ~60% of the work.
        sx, sy = img.width / width, img.height / height
        box = (left * sx, top * sy, right * sx, bottom * sy)
        img = img.resize((crop, crop), Image.Resampling.BICUBIC, box=box)
    pixels = np.asarray(img, dtype=np.float32)  # (crop, crop, 3), 0..255
    normalised = pixels * (1 / (255.0 * STD)) - MEAN / STD  # (pixels / 255 - mean) / std, one pass
    return np.ascontiguousarray(normalised.transpose(2, 0, 1))


def batch(arrays: Sequence[np.ndarray]) -> np.ndarray:
    """Stack preprocessed arrays into one (N, 3, 224, 224) float32 batch (N may be 0)."""
    if len(arrays) == 0:
        return np.zeros((0, *INPUT_SHAPE), dtype=np.float32)
    return np.stack(arrays).astype(np.float32, copy=False)
