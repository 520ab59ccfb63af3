"""The first frame of a video, decoded with OpenCV and bounded before use.

OpenCV opens still images too: the pipeline recognises the file as a video by its container first
(``iraas.classroom.sampling.probe``), so a JPEG named ``.avi`` never reaches :func:`first_frame`."""

from __future__ import annotations

from pathlib import Path

import numpy as np


class UnreadableVideo(ValueError):
    """The file is not a video (by its container, or OpenCV cannot decode it), or it is out of bounds."""


def first_frame(path: str | Path, max_pixels: int) -> np.ndarray:
    """The first frame as RGB uint8 (H, W, 3); raise UnreadableVideo with the reason."""
    import cv2

    capture = cv2.VideoCapture(str(path))
    try:
        if not capture.isOpened():
            raise UnreadableVideo("OpenCV cannot open it as a video")
        # The header gives the size before anything is decoded: refuse a frame bomb early.
        width = int(capture.get(cv2.CAP_PROP_FRAME_WIDTH))
        height = int(capture.get(cv2.CAP_PROP_FRAME_HEIGHT))
        if width * height > max_pixels:
            raise UnreadableVideo(f"frames of {width}x{height} exceed {max_pixels} pixels")
        ok, frame = capture.read()
    except cv2.error as exc:
        raise UnreadableVideo(f"OpenCV failed to decode it: {exc}") from None
    finally:
        capture.release()
    if not ok or frame is None or frame.size == 0:
        raise UnreadableVideo("it has no decodable frame")
    if frame.ndim == 2:  # grayscale video
        frame = np.repeat(frame[:, :, None], 3, axis=2)
    return np.ascontiguousarray(frame[:, :, 2::-1])  # BGR -> RGB
