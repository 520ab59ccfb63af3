"""iraas/classroom/tracking.py: faces followed from sample to sample, described once, recognised.

The engine is the edge here: a scripted one says where the faces are in each sample and what each
face's descriptor is, and counts the descriptors it was asked for (the cost tracking saves)."""

from __future__ import annotations

from typing import ClassVar

import numpy as np

from iraas.classroom.engines import ENGINES
from iraas.classroom.engines.base import Box, FaceEngine
from iraas.classroom.gallery import Gallery
from iraas.classroom.tracking import Observer, iou

RNG = np.random.default_rng(7)
ADA, ALAN, STRANGER = (RNG.normal(size=128).astype(np.float32) for _ in range(3))
GALLERY = Gallery(["Ada Lovelace", "Alan Turing"], np.stack([ADA, ALAN]))
LEFT, RIGHT = Box(100, 200, 200, 100), Box(100, 600, 200, 500)


def frame(n: int, faces: dict[Box, np.ndarray]) -> np.ndarray:
    """Sample n's frame: its number in the first pixel, each face a pattern of its own in its box."""
    rgb = np.full((480, 640, 3), 90, np.uint8)
    for box, descriptor in faces.items():
        pattern = np.random.default_rng(int(abs(descriptor[0]) * 1e6)).integers(0, 255, (box.height, box.width, 1))
        rgb[box.top:box.bottom, box.left:box.right] = pattern.astype(np.uint8)
    rgb[0, 0, 0] = n
    return rgb


class ScriptedEngine(FaceEngine):
    """Sample n shows the faces ``script[n]``: box -> whose descriptor."""

    spec: ClassVar = ENGINES["dlib"]

    def __init__(self, script: dict[int, dict[Box, np.ndarray]]) -> None:
        self.script, self.described = script, 0

    def detect(self, rgb: np.ndarray) -> list[Box]:
        return list(self.script.get(int(rgb[0, 0, 0]), {}))

    def describe(self, rgb: np.ndarray, boxes: list[Box]) -> list[np.ndarray]:
        self.described += len(boxes)
        faces = self.script[int(rgb[0, 0, 0])]
        return [faces[box] + np.float32(0.01) for box in boxes]  # a little off the enrolled one, as real faces are


def run(script: dict[int, dict[Box, np.ndarray]], samples: int, refresh_every: int = 10):
    engine = ScriptedEngine(script)
    observer = Observer(engine, GALLERY, tolerance=0.6, margin=0.92, start_s=0, end_s=samples, refresh_every=refresh_every)
    frames = ((float(n), frame(n, script.get(n, {}))) for n in range(samples))
    return observer.observe_all(frames), engine


def test_a_face_followed_through_the_samples_is_described_once_per_refresh() -> None:
    result, engine = run({n: {LEFT: ADA} for n in range(30)}, 30, refresh_every=10)
    assert result.seen == {"Ada Lovelace": [float(n) for n in range(30)]}
    assert engine.described == 3  # samples 0, 10 and 20
    assert result.clear == ["Ada Lovelace"]


def test_two_people_and_a_stranger_are_told_apart_and_the_stranger_keeps_a_crop() -> None:
    script = {n: {LEFT: ADA, RIGHT: STRANGER} for n in range(5)}
    script.update({n: {LEFT: ALAN} for n in range(5, 8)})  # Ada leaves, Alan sits in her seat at once
    result, engine = run(script, 8)
    assert result.seen == {"Ada Lovelace": [0.0, 1.0, 2.0, 3.0, 4.0], "Alan Turing": [5.0, 6.0, 7.0]}
    assert engine.described == 3  # Ada and the stranger at sample 0, Alan at sample 5
    (stranger,) = result.unknown
    assert stranger.times == [0.0, 1.0, 2.0, 3.0, 4.0] and stranger.crop and stranger.crop[:2] == b"\xff\xd8"


def test_a_face_that_moves_a_little_is_followed_and_one_that_jumps_is_described_again() -> None:
    moved = Box(110, 210, 210, 110)  # IoU with LEFT about 0.68
    result, engine = run({0: {LEFT: ADA}, 1: {moved: ADA}, 2: {RIGHT: ADA}}, 3)
    assert iou(LEFT, moved) > 0.3 and iou(moved, RIGHT) == 0
    assert result.seen == {"Ada Lovelace": [0.0, 1.0, 2.0]}
    assert engine.described == 2  # sample 0, and sample 2 where the face is somewhere else


def test_a_face_that_leaves_and_comes_back_is_described_again() -> None:
    result, engine = run({0: {LEFT: ADA}, 1: {}, 2: {LEFT: ADA}}, 3)
    assert result.seen == {"Ada Lovelace": [0.0, 2.0]} and engine.described == 2
    assert result.sample_times == [0.0, 1.0, 2.0]
