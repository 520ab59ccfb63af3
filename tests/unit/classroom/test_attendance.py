"""iraas/classroom/attendance.py: the report of a lecture from its segments' sightings."""

from __future__ import annotations

import csv
import io

import numpy as np
import pytest

from iraas.classroom.attendance import (
    SegmentResult,
    UnknownPerson,
    merge,
    min_present_for,
    segment_bounds,
    spans,
)
from iraas.classroom.students import StudentRecord

ADA = StudentRecord("1", "Ada Lovelace", "Maths", "1843")
ALAN = StudentRecord("2", "Alan Turing", "=HYPERLINK(1)", "1936")
RECORDS = {r.name: r for r in (ADA, ALAN)}
ROSTER = ["Ada Lovelace", "Alan Turing", "Grace Hopper"]


def seen(result: SegmentResult, name: str, times, clear: bool = False) -> SegmentResult:
    for t in times:
        result.see(name, float(t), clear=clear)
    return result


def segment(start: float, end: float) -> SegmentResult:
    return SegmentResult(start, end, sample_times=[float(t) for t in range(int(start), int(end))])


def report_of(*segments: SegmentResult, duration: float = 60.0, min_present: float = 20.0):
    return merge("lecture.mp4", duration, 1.0, segments, ROSTER, RECORDS, tolerance=0.6, min_present_s=min_present)


def test_a_student_who_came_late_is_there_from_when_they_were_first_seen() -> None:
    report, _ = report_of(seen(segment(0, 60), "Ada Lovelace", range(12, 60)))
    (ada,) = report.students
    assert (ada.first_seen_s, ada.last_seen_s, ada.present_s, ada.share) == (12.0, 59.0, 48.0, 0.8)
    assert ada.spans == [(12.0, 60.0)] and ada.status == "present"
    assert (ada.id, ada.major, ada.year) == ("1", "Maths", "1843")
    assert report.absent == ["Alan Turing", "Grace Hopper"]
    assert (report.frames_sampled, report.duration_s, report.sample_every_s) == (60, 60.0, 1.0)


def test_looking_away_for_a_stretch_splits_the_spans_and_counts_only_the_samples_seen() -> None:
    report, _ = report_of(seen(segment(0, 60), "Ada Lovelace", [*range(0, 10), *range(20, 30)]))
    (ada,) = report.students
    assert ada.spans == [(0.0, 10.0), (20.0, 30.0)]
    assert (ada.first_seen_s, ada.last_seen_s, ada.present_s, ada.status) == (0.0, 29.0, 20.0, "present")


def test_one_unclear_sighting_adds_nobody_but_a_clear_one_does() -> None:
    result = seen(seen(segment(0, 60), "Alan Turing", [7]), "Ada Lovelace", [9], clear=True)
    report, _ = report_of(result)
    assert [s.name for s in report.students] == ["Ada Lovelace"]
    assert report.absent == ["Alan Turing", "Grace Hopper"]
    assert report.students[0].status == "partial"  # 1 s of a 20 s minimum


def test_segments_merge_into_the_report_of_the_whole_video_in_any_order() -> None:
    first = seen(segment(0, 30), "Ada Lovelace", range(25, 30))
    second = seen(segment(30, 60), "Ada Lovelace", range(30, 41))
    whole = seen(segment(0, 60), "Ada Lovelace", range(25, 41))
    assert report_of(second, first)[0].to_dict() == report_of(whole)[0].to_dict()
    assert report_of(second, first)[0].students[0].spans == [(25.0, 41.0)]


def test_a_missing_segment_is_named_and_its_samples_are_not_counted() -> None:
    lost = SegmentResult(30, 60, missing=True, detail="the segment failed 3 times")
    report, _ = report_of(seen(segment(0, 30), "Ada Lovelace", range(0, 30)), lost)
    assert report.missing_spans == [(30.0, 60.0)]
    assert report.frames_sampled == 30
    assert report.students[0].present_s == 30.0


def test_unknown_faces_are_counted_as_people_not_detections() -> None:
    rng = np.random.default_rng(0)
    stranger, other = rng.normal(size=128).astype(np.float32), rng.normal(size=128).astype(np.float32)
    near = stranger + np.float32(0.01)
    result = segment(0, 60)
    result.unknown = [
        UnknownPerson(stranger, [1.0, 2.0, 3.0], b"crop-1"),
        UnknownPerson(near, [40.0, 41.0], b"crop-2"),  # the same person, back later: one person
        UnknownPerson(other, [5.0, 6.0]),  # two samples: a false detection, not counted
    ]
    report, crops = report_of(result)
    assert report.unknown_faces == 1
    assert report.unknown == [{"first_seen_s": 1.0, "last_seen_s": 41.0, "present_s": 5.0, "crop": 0,
                               "spans": [[1.0, 4.0], [40.0, 42.0]]}]
    assert crops == [b"crop-1"]


def test_a_segment_result_survives_json() -> None:
    result = seen(segment(0, 30), "Ada Lovelace", [1, 2], clear=True)
    result.unknown = [UnknownPerson(np.arange(128, dtype=np.float32), [3.0], b"\xff\xd8jpeg")]
    again = SegmentResult.from_dict(result.to_dict())
    assert again.to_dict() == result.to_dict()
    assert np.array_equal(again.unknown[0].descriptor, result.unknown[0].descriptor)


def test_the_csv_has_one_formula_safe_row_per_student_seen() -> None:
    report, _ = report_of(seen(segment(0, 60), "Alan Turing", range(0, 60)))
    rows = list(csv.reader(io.StringIO(report.csv_text())))
    assert rows[0] == ["name", "id", "major", "year", "first_seen_s", "last_seen_s", "present_s", "share", "status"]
    assert rows[1] == ["Alan Turing", "2", "'=HYPERLINK(1)", "1936", "0.0", "59.0", "60.0", "1.0", "present"]


def test_a_face_enrolled_without_a_record_is_still_a_student_with_empty_fields() -> None:
    report, _ = report_of(seen(segment(0, 60), "Grace Hopper", [1, 2]))
    assert [(s.name, s.id, s.major) for s in report.students] == [("Grace Hopper", "", "")]


@pytest.mark.parametrize(("duration", "minimum", "expected"), [(3600, 300, 300), (60, 300, 30), (0, 300, 0)])
def test_present_means_the_minimum_or_half_of_a_shorter_lecture(duration: float, minimum: float, expected: float) -> None:
    assert min_present_for(duration, minimum) == expected


def test_spans_end_one_sample_after_the_last_sighting_and_never_past_the_end() -> None:
    assert spans([0, 1, 2, 5, 6], 1.0, 6.5) == [(0.0, 3.0), (5.0, 6.5)]
    assert spans([0.0, 2.0, 4.0], 2.0, 10.0) == [(0.0, 6.0)]


@pytest.mark.parametrize(
    ("duration", "segment_s", "every", "expected"),
    [
        (52.0, 60.0, 1.0, [(0.0, 52.0)]),
        (150.0, 60.0, 1.0, [(0.0, 60.0), (60.0, 120.0), (120.0, 150.0)]),
        (100.0, 45.0, 2.0, [(0.0, 44.0), (44.0, 88.0), (88.0, 100.0)]),  # a multiple of the sample interval
        (120.0, 60.0, 1.0, [(0.0, 60.0), (60.0, 120.0)]),
    ],
)
def test_a_video_is_cut_into_segments_on_the_sample_grid(duration, segment_s, every, expected) -> None:
    assert segment_bounds(duration, segment_s, every) == expected
