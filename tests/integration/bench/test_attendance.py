"""bench/attendance.py builds its 60-minute lecture by playing a 10-minute one six times in a row,
remuxed: the result is one video of the whole length, whose samples repeat the original's."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from bench.attendance import repeat_video
from harness.lectures import Appearance, make_lecture
from iraas.classroom.sampling import probe, sample_frames

pytestmark = pytest.mark.slow


def test_a_lecture_played_three_times_in_a_row_is_three_times_as_long_and_repeats(faces_dir: Path, tmp_path: Path) -> None:
    photo = faces_dir / "people" / "obama" / "face_recognition-obama.jpg"
    once = make_lecture(tmp_path / "once.mp4", [Appearance(photo, 1.0, 3.0, 0)], 4.0, (320, 240), fps=10, keyframe_s=None)
    thrice = repeat_video(once, tmp_path / "thrice.mp4", 3)

    info = probe(thrice, 10_000_000, 3600)
    assert info.duration_s == pytest.approx(12.0, abs=0.1) and info.frames == 120
    first = {round(s.t): s.rgb for s in sample_frames(once, 1.0)}
    again = {round(s.t): s.rgb for s in sample_frames(thrice, 1.0)}
    assert sorted(again) == list(range(12))
    for t in range(12):  # lossless: the same pictures, four seconds apart
        assert np.array_equal(again[t], first[t % 4]), t
