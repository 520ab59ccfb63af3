"""Lecture videos from face photos: the file plays as asked, and each face is on screen exactly in
its spans (read back by sampling the video and comparing each place with what it should show)."""

from __future__ import annotations

from functools import cache
from pathlib import Path

import numpy as np
import pytest

from harness.data import shared_data_dir
from harness.lectures import (
    Appearance,
    Scene,
    Shown,
    arriving_class,
    background,
    make_lecture,
    one_photo_each,
    photo_box,
    render,
    schedule,
    slot_box,
)
from iraas.classroom.sampling import probe, sample_frames

PEOPLE = shared_data_dir() / "faces" / "people"
SIZE = (480, 270)
FPS = 10

pytestmark = pytest.mark.skipif(not PEOPLE.is_dir(), reason=f"shared face photos not found at {PEOPLE}")


@pytest.fixture(scope="module")
def photos() -> list[Path]:
    return one_photo_each(PEOPLE)


@pytest.fixture(scope="module")
def appearances(photos) -> list[Appearance]:
    """Three people: one turning away for a while, one coming late, one leaving early (two at once)."""
    return [
        Appearance(photos[0], 1.0, 6.0, slot=0, away=((3.0, 4.5),)),
        Appearance(photos[1], 2.5, 8.0, slot=1),
        Appearance(photos[2], 0.0, 4.0, slot=2),
    ]


@pytest.fixture(scope="module")
def lecture(tmp_path_factory, appearances) -> Path:
    return make_lecture(tmp_path_factory.mktemp("lectures") / "lecture.mp4", appearances, 8.0, SIZE, fps=FPS)


def expected(appearance: Appearance, t: float) -> str:
    if not appearance.start_s <= t < appearance.end_s:
        return "empty"
    return "away" if any(lo <= t < hi for lo, hi in appearance.away) else "face"


@cache
def views(appearance: Appearance, slots: int) -> dict[str, np.ndarray]:
    """What the appearance's place looks like empty, with the face, and with the person turned away."""
    left, top, right, bottom = photo_box(appearance.photo, appearance.slot, slots, SIZE)
    drawn = {
        "empty": background(SIZE),
        "face": render(Scene(0, 1, (Shown(appearance.photo, appearance.slot, True),)), slots, SIZE),
        "away": render(Scene(0, 1, (Shown(appearance.photo, appearance.slot, False),)), slots, SIZE),
    }
    return {name: view[top:bottom, left:right].astype(np.int16) for name, view in drawn.items()}


def seen(rgb: np.ndarray, appearance: Appearance, slots: int) -> str:
    """What the place shows: the nearest (mean absolute difference) of its three views."""
    left, top, right, bottom = photo_box(appearance.photo, appearance.slot, slots, SIZE)
    region = rgb[top:bottom, left:right].astype(np.int16)
    distances = {name: np.abs(region - view).mean() for name, view in views(appearance, slots).items()}
    return min(distances, key=lambda name: distances[name])


def test_the_lecture_plays_with_the_given_duration_size_and_keyframes(lecture):
    info = probe(lecture, max_pixels=SIZE[0] * SIZE[1], max_duration_s=60)
    assert (info.width, info.height, info.fps, info.frames) == (*SIZE, FPS, 80)
    assert info.duration_s == pytest.approx(8.0)
    assert info.keyframe_interval_s == pytest.approx(1.0)


@pytest.mark.parametrize("strategy", ["all", "seek"])
def test_each_face_is_on_screen_exactly_in_its_spans(lecture, appearances, strategy):
    samples = list(sample_frames(lecture, 0.5, strategy=strategy))
    assert [s.t for s in samples] == [k * 0.5 for k in range(16)]
    for sample in samples:
        for appearance in appearances:
            assert seen(sample.rgb, appearance, 3) == expected(appearance, sample.t), (sample.t, appearance.slot)


@pytest.mark.parametrize("strategy", ["nonref", "keyframes", "auto"])
def test_skipping_strategies_see_each_face_in_its_spans_to_a_frame(lecture, appearances, strategy):
    for sample in sample_frames(lecture, 0.5, strategy=strategy):
        for appearance in appearances:
            near = {expected(appearance, sample.t + d / FPS) for d in (-1, 0, 1)}
            assert seen(sample.rgb, appearance, 3) in near, (sample.t, appearance.slot)


def test_a_person_turned_away_is_there_but_not_their_face(photos):
    face = render(Scene(0, 1, (Shown(photos[0], 0, True),)), 1, SIZE).astype(np.int16)
    away = render(Scene(0, 1, (Shown(photos[0], 0, False),)), 1, SIZE).astype(np.int16)
    left, top, right, bottom = photo_box(photos[0], 0, 1, SIZE)
    empty = background(SIZE)[top:bottom, left:right]
    assert np.abs(away[top:bottom, left:right] - empty).mean() > 20  # somebody is there
    assert np.abs(away[top:bottom, left:right] - face[top:bottom, left:right]).mean() > 20  # not the face


def test_each_distinct_scene_is_listed_once_and_the_scenes_cover_every_frame(appearances):
    scenes = schedule(appearances, 8.0, FPS)
    assert [(s.first, s.end) for s in scenes] == [(0, 10), (10, 25), (25, 30), (30, 40), (40, 45), (45, 60), (60, 80)]
    assert [len(s.shown) for s in scenes] == [1, 2, 3, 3, 2, 2, 1]
    assert [p.facing for p in scenes[3].shown] == [False, True, True]
    assert schedule([], 3.0, FPS) == [Scene(0, 30, ())]


def test_slots_fill_rows_of_four_within_the_frame():
    boxes = [slot_box(n, 8, (1280, 720)) for n in range(8)]
    assert boxes[0][:2] == (0, boxes[0][1]) and boxes[3][2] == 1280
    assert boxes[4][1] == boxes[0][3]  # the second row starts below the first
    assert all(0 <= left < right <= 1280 and 0 <= top < bottom <= 720 for left, top, right, bottom in boxes)


@pytest.mark.parametrize(("bad", "message"), [
    (Appearance(Path("a.jpg"), 2.0, 1.0), "before end_s"),
    (Appearance(Path("a.jpg"), 0.0, 2.0, away=((1.0, 3.0),)), "not within"),
    (Appearance(Path("a.jpg"), 0.0, 2.0, slot=3), "not one of the 2 places"),
])
def test_impossible_appearances_are_refused(bad, message):
    with pytest.raises(ValueError, match=message):
        schedule([bad, Appearance(Path("b.jpg"), 5.0, 6.0, slot=1)], 10.0, slots=2)
    with pytest.raises(ValueError, match="overlap in slot 0"):
        schedule([Appearance(Path("a.jpg"), 0.0, 2.0), Appearance(Path("b.jpg"), 1.0, 3.0)], 10.0)


def test_an_arriving_class_comes_in_one_after_another(photos, tmp_path):
    people = arriving_class(photos[:8], 64.0)
    assert [(a.start_s, a.end_s, a.slot) for a in people[:3]] == [(4.0, 64.0, 0), (8.0, 62.0, 1), (12.0, 60.0, 2)]
    assert people[1].away == ((9.0, 11.0),)
    video = make_lecture(tmp_path / "default-keyframes.mp4", people[:2], 30.0, (320, 180), keyframe_s=None)
    info = probe(video, 10**6, 60)
    assert info.duration_s == pytest.approx(30.0) and info.frames == 300
    assert info.keyframe_interval_s is None or info.keyframe_interval_s > 2  # x264's own spacing: few keyframes
