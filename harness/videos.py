"""Short classroom videos made from face photos, so that a test or bench knows exactly who is in
the first frame. Used by the tests and by ``bench.faces``."""

from __future__ import annotations

from pathlib import Path


def make_classroom_video(path: Path, photos: list[Path], size: tuple[int, int] = (1280, 720), frames: int = 12) -> Path:
    """A short mp4v video whose every frame shows ``photos`` side by side on a grey classroom wall."""
    import cv2
    import numpy as np

    width, height = size
    canvas = np.full((height, width, 3), (96, 110, 120), np.uint8)
    canvas[int(height * 0.8):] = (60, 70, 80)  # a floor, so "nobody" is not a flat image
    slot = width // max(1, len(photos))
    for n, photo in enumerate(photos):
        image = cv2.imread(str(photo))
        if image is None:
            raise ValueError(f"{photo}: not an image OpenCV can read")
        scale = min((slot - 20) / image.shape[1], (height * 0.7) / image.shape[0])
        image = cv2.resize(image, None, fx=scale, fy=scale, interpolation=cv2.INTER_AREA)
        h, w = image.shape[:2]
        x, y = n * slot + (slot - w) // 2, (height - h) // 2
        canvas[y:y + h, x:x + w] = image
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter.fourcc(*"mp4v"), 10, (width, height))
    if not writer.isOpened():
        raise RuntimeError("OpenCV cannot write mp4v videos here")
    for _ in range(frames):
        writer.write(canvas)
    writer.release()
    return path


def faces_in_classroom_videos(engine, photos: list[Path], folder: Path, sizes: dict[str, tuple[int, int]],
                              per_frame: tuple[int, ...] = (1, 2, 4)) -> tuple[list[tuple[Path, str, object]], int]:
    """Every photo in classroom videos at each size, ``n`` side by side for each ``n`` in ``per_frame``
    (more photos, smaller faces); the faces the engine finds in each first frame, as
    ``(photo, "720p/2", descriptor)``, and how many photos gave no single face."""
    from iraas.classroom.frames import first_frame

    found: list[tuple[Path, str, object]] = []
    missed = 0
    for label, size in sizes.items():
        for n in per_frame:
            for start in range(0, len(photos), n):
                group = photos[start:start + n]
                video = make_classroom_video(folder / f"{label}-{n}-{start}.mp4", group, size, frames=2)
                frame = first_frame(video, 100_000_000)
                slot = size[0] // len(group)
                by_slot: dict[int, list] = {}
                for face in engine.faces(frame):
                    by_slot.setdefault((face.box.left + face.box.right) // 2 // slot, []).append(face)
                for k, photo in enumerate(group):
                    faces = by_slot.get(k, [])
                    if len(faces) == 1:
                        found.append((photo, f"{label}/{n}", faces[0].descriptor))
                    else:
                        missed += 1
    return found, missed
