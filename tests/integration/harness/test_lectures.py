"""Lecture videos as the face engine sees them: in a lecture built from the shared photos, dlib finds
each person's face in their place exactly while they face the room, and none while they are turned
away or not there."""

from __future__ import annotations

import pytest

from harness.lectures import arriving_class, make_lecture, one_photo_each, portraits, slot_box
from iraas.classroom.sampling import sample_frames

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def engine(faces_dir):
    from iraas.classroom.engines import warm_engine

    return warm_engine("dlib")


@pytest.fixture(scope="module")
def photos(engine, faces_dir, tmp_path_factory):
    return portraits(one_photo_each(faces_dir / "people")[:8], engine, tmp_path_factory.mktemp("portraits"))


@pytest.mark.parametrize("size", [(854, 480), (1280, 720), (1920, 1080)])
def test_the_engine_sees_each_face_exactly_in_its_spans(engine, photos, tmp_path, size):
    people = arriving_class(photos, 40.0, empty_s=3.0)
    video = make_lecture(tmp_path / "lecture.mp4", people, 40.0, size, slots=8)
    wrong = []
    for sample in sample_frames(video, 2.0, strategy="seek"):
        boxes = engine.detect(sample.rgb)
        for person in people:
            left, top, right, bottom = slot_box(person.slot, 8, size)
            found = sum(left <= (b.left + b.right) / 2 < right and top <= (b.top + b.bottom) / 2 < bottom for b in boxes)
            facing = person.start_s <= sample.t < person.end_s and not any(lo <= sample.t < hi for lo, hi in person.away)
            if found != int(facing):
                wrong.append((sample.t, person.photo.parent.name, found, facing))
    assert wrong == []
