"""iraas/classroom/gallery.py: the matching rule on synthetic descriptors: nearest person, within the tolerance, by a margin."""

from __future__ import annotations

import pytest

np = pytest.importorskip("numpy")

from iraas.classroom.gallery import Gallery  # noqa: E402


def unit(*values: float) -> np.ndarray:
    v = np.zeros(128, np.float32)
    v[: len(values)] = values
    return v


@pytest.fixture
def gallery() -> Gallery:
    # ada has two descriptors, bob one; ada's are 1.0 apart from bob's.
    return Gallery(["ada", "ada", "bob"], np.stack([unit(0, 0), unit(0, 0.1), unit(1, 0)]))


def test_a_clear_nearest_person_within_the_tolerance_is_matched(gallery):
    match = gallery.match(unit(0.1, 0), tolerance=0.6, margin=0.92)
    assert match.name == "ada"
    assert match.distance == pytest.approx(0.1) and match.runner_up == pytest.approx(0.9)


def test_a_face_about_as_near_to_two_people_is_unknown_even_within_the_tolerance(gallery):
    # 0.48 from ada, 0.52 from bob: ratio 0.92+, both within 0.6.
    match = gallery.match(unit(0.48, 0), tolerance=0.6, margin=0.92)
    assert match.name is None
    assert match.distance == pytest.approx(0.48) and match.runner_up == pytest.approx(0.52)
    # Without a margin the nearest-neighbour rule alone would have named ada.
    assert gallery.match(unit(0.48, 0), tolerance=0.6, margin=1.0).name == "ada"


def test_the_second_nearest_is_another_person_not_the_same_persons_other_descriptor(gallery):
    # ada's two descriptors are 0.1 apart; a face between them is ada's, not "ambiguous".
    assert gallery.match(unit(0, 0.05), tolerance=0.6, margin=0.92).name == "ada"


def test_beyond_the_tolerance_nobody_and_one_enrolled_person_needs_no_margin():
    assert Gallery(["ada"], unit(0, 0)[None]).match(unit(0.59, 0), 0.6, 0.92).name == "ada"
    assert Gallery(["ada"], unit(0, 0)[None]).match(unit(0.61, 0), 0.6, 0.92).name is None
    assert Gallery([], np.zeros((0, 128), np.float32)).match(unit(0, 0), 0.6, 0.92).name is None
