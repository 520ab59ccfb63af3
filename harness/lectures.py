"""Lecture videos made from face photos: who is on screen, where and when is known to the frame.

``make_lecture`` draws a classroom wall with one place per ``slot`` (a grid: up to four across, then
a second row) and shows each :class:`Appearance`'s photo in its place from ``start_s`` to ``end_s``;
during an ``away`` span the person is still there but turned away (the photo greyed, mirrored and
blurred out of recognition: a head, not a face). Frames only change where an appearance or an away
span begins or ends, so each distinct scene is drawn and converted to YUV once (:func:`schedule`) and
the same frame is handed to the encoder again with a new timestamp.

The file is H.264 in MP4 (libx264, which the ``av`` wheel's FFmpeg includes; MPEG-4 part 2 where a
build lacks it), preset ``veryfast`` with cheaper analysis (``FAST_X264``): three B-frames in a row
and the B-pyramid, as in a real recording, so that a decoder's "skip non-reference frames" has
something to skip.
``keyframe_s`` sets a fixed keyframe spacing (``keyint = min-keyint``, no scene-cut keyframes, as a
camera's fixed GOP); ``None`` leaves x264's default (keyint 250, scene cuts may add keyframes).

Cost, measured on the development machine (Intel Xeon, 2 shared cores): a 10-minute 720p lecture
at 10 fps with 8 people (``arriving_class``) builds in about 18 s with a keyframe a second (39 MB),
17 s with x264's default spacing (3 MB); a 2-minute 1080p one at 30 fps in about 25 s.

``portraits`` crops photos to head and shoulders around the face an engine finds, for lectures
where eight places at 480p would leave a landscape photo's face too small to detect.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import numpy as np

WALL = (96, 110, 120)
FLOOR = (60, 70, 80)
BOARD = (222, 226, 224)
ACROSS = 4  # places per row
# Cheaper analysis for a picture that hardly changes (about a third less time per frame than veryfast
# alone), keeping the B-frames (always 3, B-pyramid) that make a real recording's decoding cost.
FAST_X264 = "b-adapt=0:me=dia:subme=0:aq-mode=0:no-mbtree=1"


@dataclass(frozen=True)
class Appearance:
    photo: Path                 # a face photo (one person)
    start_s: float              # on screen from here...
    end_s: float                # ...until here (exclusive)
    slot: int = 0               # position across the room (0, 1, 2, ...)
    away: tuple[tuple[float, float], ...] = ()   # spans within [start_s, end_s) when the face is not visible


@dataclass(frozen=True)
class Shown:
    """One person in one scene: whose photo, where, and whether the face is turned to the camera."""

    photo: Path
    slot: int
    facing: bool


@dataclass(frozen=True)
class Scene:
    """Frames ``[first, end)`` (frame ``i`` is shown at ``i / fps`` s) all look the same."""

    first: int
    end: int
    shown: tuple[Shown, ...]


def _frame_at(t: float, fps: int) -> int:
    """The first frame shown at or after ``t`` seconds."""
    return max(0, math.ceil(t * fps - 1e-6))


def frame_count(duration_s: float, fps: int) -> int:
    return max(2, round(duration_s * fps))


def _check(appearances: list[Appearance], duration_s: float, fps: int, slots: int) -> None:
    if duration_s <= 0 or fps <= 0:
        raise ValueError("duration_s and fps must be positive")
    for a in appearances:
        if not 0 <= a.start_s < a.end_s:
            raise ValueError(f"{a.photo.name}: start_s {a.start_s} must be >= 0 and before end_s {a.end_s}")
        if not 0 <= a.slot < slots:
            raise ValueError(f"{a.photo.name}: slot {a.slot} is not one of the {slots} places")
        for lo, hi in a.away:
            if not a.start_s <= lo < hi <= a.end_s:
                raise ValueError(f"{a.photo.name}: away span ({lo}, {hi}) is not within ({a.start_s}, {a.end_s})")
    for n, a in enumerate(appearances):
        for b in appearances[n + 1:]:
            if a.slot == b.slot and a.start_s < b.end_s and b.start_s < a.end_s:
                raise ValueError(f"{a.photo.name} and {b.photo.name} overlap in slot {a.slot}")


def schedule(appearances: list[Appearance], duration_s: float, fps: int = 10, slots: int | None = None) -> list[Scene]:
    """The lecture's distinct scenes in order, covering frames ``0`` to ``frame_count(duration_s, fps)``."""
    slots = slots if slots is not None else max((a.slot for a in appearances), default=0) + 1
    _check(appearances, duration_s, fps, slots)
    total = frame_count(duration_s, fps)
    cuts = {0, total}
    for a in appearances:
        for t in (a.start_s, a.end_s, *(t for span in a.away for t in span)):
            cuts.add(min(total, _frame_at(t, fps)))
    bounds = sorted(cuts)
    scenes: list[Scene] = []
    for first, end in zip(bounds, bounds[1:], strict=False):
        t = first / fps
        shown = tuple(
            Shown(a.photo, a.slot, not any(lo <= t < hi for lo, hi in a.away))
            for a in sorted(appearances, key=lambda a: a.slot)
            if a.start_s <= t < a.end_s
        )
        if scenes and scenes[-1].shown == shown:  # a cut that changes nothing (an empty span)
            scenes[-1] = Scene(scenes[-1].first, end, shown)
        else:
            scenes.append(Scene(first, end, shown))
    return scenes


def slot_box(slot: int, slots: int, size: tuple[int, int]) -> tuple[int, int, int, int]:
    """The place ``slot`` of ``slots`` on a frame of ``size``: ``(left, top, right, bottom)``, in pixels."""
    width, height = size
    across = min(slots, ACROSS)
    rows = math.ceil(slots / across)
    top, bottom = int(height * 0.14), int(height * 0.94)
    row, col = divmod(slot, across)
    w, h = width // across, (bottom - top) // rows
    return col * w, top + row * h, (col + 1) * w, top + (row + 1) * h


def photo_box(photo: Path, slot: int, slots: int, size: tuple[int, int]) -> tuple[int, int, int, int]:
    """Where ``photo`` is drawn in its slot: ``(left, top, right, bottom)``, centred, aspect kept."""
    left, top, right, bottom = slot_box(slot, slots, size)
    pw, ph = _photo(photo).size
    scale = min((right - left) * 0.9 / pw, (bottom - top) * 0.92 / ph)
    w, h = max(1, int(pw * scale)), max(1, int(ph * scale))
    x, y = left + (right - left - w) // 2, top + (bottom - top - h) // 2
    return x, y, x + w, y + h


@cache
def _photo(path: Path):  # -> PIL.Image.Image, upright (EXIF orientation applied), RGB
    from PIL import Image, ImageOps

    with Image.open(path) as image:
        return ImageOps.exif_transpose(image).convert("RGB")


def _turned_away(image):  # PIL.Image.Image -> the same size, no face left in it
    from PIL import ImageFilter, ImageOps

    head = ImageOps.mirror(ImageOps.grayscale(image)).filter(ImageFilter.GaussianBlur(max(image.size) / 10))
    return ImageOps.colorize(head, (40, 30, 25), (150, 130, 110))  # hair-coloured, blurred beyond recognition


def background(size: tuple[int, int]) -> np.ndarray:
    """The empty room: a wall, a whiteboard and a floor (not a flat image)."""
    import numpy as np

    width, height = size
    canvas = np.empty((height, width, 3), np.uint8)
    canvas[:] = WALL
    canvas[int(height * 0.02):int(height * 0.12), int(width * 0.3):int(width * 0.7)] = BOARD
    canvas[int(height * 0.86):] = FLOOR
    return canvas


def render(scene: Scene, slots: int, size: tuple[int, int]) -> np.ndarray:
    """One scene as an RGB frame (H, W, 3) uint8."""
    import numpy as np

    canvas = background(size)
    for person in scene.shown:
        left, top, right, bottom = photo_box(person.photo, person.slot, slots, size)
        image = _photo(person.photo).resize((right - left, bottom - top))
        if not person.facing:
            image = _turned_away(image)
        canvas[top:bottom, left:right] = np.asarray(image)
    return canvas


def encoder_name() -> str:
    import av

    return "libx264" if "libx264" in av.codecs_available else "mpeg4"


def make_lecture(path: Path, appearances: list[Appearance], duration_s: float, size: tuple[int, int] = (1280, 720),
                 fps: int = 10, keyframe_s: float | None = 1.0, slots: int | None = None, preset: str = "veryfast") -> Path:
    """An H.264 mp4 (libx264; MPEG-4 part 2 where the wheel's FFmpeg lacks it) of a classroom wall where
    each appearance's face is on screen from ``start_s`` to ``end_s`` at its slot, ``round(duration_s * fps)``
    frames long. ``keyframe_s`` None: the encoder's default spacing; else a keyframe exactly every
    ``keyframe_s`` (rounded to whole frames). ``slots``: places in the room (default: the highest slot used + 1)."""
    import av
    from av.video.stream import VideoStream

    width, height = size
    if width % 2 or height % 2:
        raise ValueError(f"{width}x{height}: YUV 4:2:0 needs an even width and height")
    slots = slots if slots is not None else max((a.slot for a in appearances), default=0) + 1
    scenes = schedule(appearances, duration_s, fps, slots)
    codec = encoder_name()
    with av.open(str(path), "w", format="mp4") as container:
        stream = container.add_stream(codec, rate=fps)
        assert isinstance(stream, VideoStream)
        stream.width, stream.height, stream.pix_fmt = width, height, "yuv420p"
        options: dict[str, object] = {"bf": "2", "b": "4M"}
        x264 = [FAST_X264]
        if codec == "libx264":
            options = {"preset": preset}
        if keyframe_s is not None:
            gop = max(1, round(keyframe_s * fps))
            options |= {"g": str(gop), "keyint_min": str(gop)}
            x264.append("scenecut=0")
            if codec != "libx264":
                options["sc_threshold"] = "1000000000"
        if codec == "libx264":
            options["x264-params"] = ":".join(x264)
        stream.options = options
        for scene in scenes:
            frame = av.VideoFrame.from_ndarray(render(scene, slots, size), format="rgb24").reformat(format="yuv420p")
            for i in range(scene.first, scene.end):
                frame.pts = i  # the same picture again: the encoder copies it in
                container.mux(stream.encode(frame))
        container.mux(stream.encode(None))
    return path


def one_photo_each(people: Path) -> list[Path]:
    """One photo per person of a ``faces/people/<identity>/`` folder (the first by name), by identity."""
    return [sorted(p for p in person.iterdir() if p.is_file())[0] for person in sorted(people.iterdir()) if person.is_dir()]


def arriving_class(photos: list[Path], duration_s: float, empty_s: float = 4.0) -> list[Appearance]:
    """A lecture's attendance: the room empty for ``empty_s``, then the people come in one after
    another (the n-th at ``empty_s + n * duration_s / 16``), each in their own slot, the later ones
    leaving early (the n-th ``n * duration_s / 32`` before the end), each turned away for 2 s a
    little after arriving."""
    appearances = []
    for n, photo in enumerate(photos):
        start = empty_s + n * duration_s / 16
        end = duration_s - n * duration_s / 32
        away = ((start + 1.0, start + 3.0),) if start + 3.0 < end else ()
        appearances.append(Appearance(photo, start, end, slot=n, away=away))
    return appearances


def portraits(photos: list[Path], engine, folder: Path) -> list[Path]:  # engine: iraas.classroom.engines.base.Engine
    """Each photo cropped to head and shoulders around the one face ``engine`` finds in it (written to
    ``folder`` as PNG), so that in a lecture's place the face fills what the photo's framing left:
    a landscape press photo's face is otherwise too small for a detector at 480p with eight places."""
    import numpy as np

    folder.mkdir(parents=True, exist_ok=True)
    cropped = []
    for photo in photos:
        image = _photo(photo)
        boxes = engine.detect(np.asarray(image))
        if len(boxes) != 1:
            raise ValueError(f"{photo}: {len(boxes)} faces found, not one")
        (box,) = boxes
        width, height = box.right - box.left, box.bottom - box.top
        middle = (box.left + box.right) / 2
        region = (max(0, int(middle - 1.1 * width)), max(0, int(box.top - 0.8 * height)),
                  min(image.width, int(middle + 1.1 * width)), min(image.height, int(box.bottom + 1.0 * height)))
        path = folder / f"{photo.parent.name}-{photo.stem}.png"
        image.crop(region).save(path)
        cropped.append(path)
    return cropped
