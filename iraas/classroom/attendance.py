"""Attendance across a whole lecture, from what its sampled frames showed: who was there, from when to
when, for how long; who never came; how many people nobody enrolled.

Pure (numpy for the descriptors of unknown people): the frames are sampled and their faces followed
and recognised elsewhere (``iraas/classroom/tracking.py``). A video is observed in segments, each
into a :class:`SegmentResult` (a long lecture's segments by different invocations, fanned out by
``iraas/classroom/lecture.py``); :func:`merge` makes the :class:`Report` of all of them, the same
however the video was cut.

The rules, each on the samples (frames at multiples of ``sample_every_s``):

- A student is **seen** in a sample when a face in it matches them. They count as there only when
  seen in at least two samples, or once with a clear match (nearer than ``CLEAR_FRACTION`` of the
  tolerance, and clearly nearer than anyone else): one misread frame adds nobody.
- ``first_seen_s`` and ``last_seen_s`` are the first and last samples they were seen in (so within
  one sample of when they came and went); ``present_s`` is their samples times ``sample_every_s``;
  ``share`` that over the lecture's duration; ``spans`` the runs of consecutive samples.
- ``present`` if ``present_s`` is at least the minimum (``IRAAS_ATTENDANCE_MIN_PRESENT_S``, or half
  of a lecture shorter than twice it), else ``partial``.
- Unknown faces are grouped by descriptor into people (within the tolerance of each other); a group
  counts when seen in at least three samples (a false detection lasts one or two).
  ``unknown_faces`` is how many people, not detections.
- A segment that failed for good leaves its span in ``missing_spans``; nobody is absent or present
  because of what it would have shown, and the report says so.
"""

from __future__ import annotations

import base64
import csv
import io
import math
from collections.abc import Iterable, Sequence
from dataclasses import asdict, dataclass, field
from typing import Any

import numpy as np

from iraas.classroom.students import StudentRecord, csv_cell

# A single sighting counts only this much nearer than the tolerance (0.6 * 0.8 = 0.48 for dlib) and
# this much nearer than the second-nearest person.
CLEAR_FRACTION = 0.8
CLEAR_MARGIN = 0.8
MIN_SAMPLES = 2  # samples a student must be seen in, without a clear match
# Samples an unknown person must be seen in. A false detection (a pattern in a painting behind
# someone, caught by the detector's second, more sensitive pass) lasts a sample or two; a person
# nobody enrolled who attends is seen for minutes.
MIN_UNKNOWN_SAMPLES = 3
ATTENDANCE_CSV_HEADER = (
    "name", "id", "major", "year", "first_seen_s", "last_seen_s", "present_s", "share", "status",
)
REPORT_VERSION = 1


def _time(t: float) -> float:
    return round(t, 3)


@dataclass
class UnknownPerson:
    """Faces nobody enrolled that look like one person: when they were seen, one descriptor to tell
    them apart from others, and a small crop of their face (JPEG) to show."""

    descriptor: np.ndarray
    times: list[float] = field(default_factory=list)
    crop: bytes | None = None

    def to_dict(self) -> dict[str, Any]:
        return {
            "descriptor": base64.b64encode(np.asarray(self.descriptor, "<f4").tobytes()).decode("ascii"),
            "times": [_time(t) for t in sorted(set(self.times))],
            "crop": base64.b64encode(self.crop).decode("ascii") if self.crop else None,
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> UnknownPerson:
        crop = data.get("crop")
        return cls(
            descriptor=np.frombuffer(base64.b64decode(data["descriptor"]), "<f4").copy(),
            times=[float(t) for t in data.get("times", [])],
            crop=base64.b64decode(crop) if crop else None,
        )


@dataclass
class SegmentResult:
    """What one span of a video showed, sample by sample; stored between invocations as JSON."""

    start_s: float
    end_s: float
    sample_times: list[float] = field(default_factory=list)
    seen: dict[str, list[float]] = field(default_factory=dict)  # student name -> sample times
    clear: list[str] = field(default_factory=list)  # students matched with a clear margin at least once
    unknown: list[UnknownPerson] = field(default_factory=list)
    missing: bool = False  # failed for good: its span is missing from the report
    detail: str | None = None  # why it is missing

    def see(self, name: str, t: float, clear: bool = False) -> None:
        times = self.seen.setdefault(name, [])
        if not times or times[-1] != t:
            times.append(t)
        if clear and name not in self.clear:
            self.clear.append(name)

    def to_dict(self) -> dict[str, Any]:
        return {
            "start_s": self.start_s, "end_s": self.end_s, "sample_times": [_time(t) for t in self.sample_times],
            "seen": {name: [_time(t) for t in times] for name, times in sorted(self.seen.items())},
            "clear": sorted(self.clear), "unknown": [u.to_dict() for u in self.unknown],
            "missing": self.missing, "detail": self.detail,
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> SegmentResult:
        return cls(
            start_s=float(data["start_s"]), end_s=float(data["end_s"]),
            sample_times=[float(t) for t in data.get("sample_times", [])],
            seen={str(n): [float(t) for t in ts] for n, ts in data.get("seen", {}).items()},
            clear=[str(n) for n in data.get("clear", [])],
            unknown=[UnknownPerson.from_dict(u) for u in data.get("unknown", [])],
            missing=bool(data.get("missing", False)), detail=data.get("detail"),
        )


def group_unknown(people: Iterable[UnknownPerson], tolerance: float) -> list[UnknownPerson]:
    """Unknown faces grouped into people: each joins the first group whose descriptor is within the
    tolerance (the group keeps its first descriptor and crop), else starts one. Greedy and in order,
    so the same faces in the same order always make the same groups."""
    groups: list[UnknownPerson] = []
    for person in people:
        for group in groups:
            if float(np.linalg.norm(group.descriptor - person.descriptor)) <= tolerance:
                group.times.extend(person.times)
                group.crop = group.crop or person.crop
                break
        else:
            groups.append(UnknownPerson(np.asarray(person.descriptor, np.float32), list(person.times), person.crop))
    return groups


def spans(times: Sequence[float], every_s: float, duration_s: float) -> list[tuple[float, float]]:
    """Runs of consecutive sample times as ``(start, end)``, each ending one sample after its last
    sighting (at most at the video's end): how a timeline draws them."""
    found: list[tuple[float, float]] = []
    for t in sorted(set(times)):
        if found and t - found[-1][1] < every_s / 2:  # the next sample after the run's last
            found[-1] = (found[-1][0], min(duration_s, t + every_s))
        else:
            found.append((t, min(duration_s, t + every_s)))
    return [(_time(a), _time(b)) for a, b in found]


def min_present_for(duration_s: float, min_present_s: float) -> float:
    """The presence that counts as ``present``: the setting, or half of a lecture shorter than twice it."""
    return min(min_present_s, duration_s / 2)


@dataclass
class StudentAttendance:
    name: str
    id: str
    major: str
    year: str
    first_seen_s: float
    last_seen_s: float
    present_s: float
    share: float
    status: str  # "present" or "partial"
    spans: list[tuple[float, float]]

    def csv_row(self) -> tuple[str, ...]:
        return tuple(csv_cell(str(v)) for v in (
            self.name, self.id, self.major, self.year, self.first_seen_s, self.last_seen_s, self.present_s,
            self.share, self.status,
        ))


@dataclass
class Report:
    video: str
    duration_s: float
    sample_every_s: float
    frames_sampled: int
    min_present_s: float
    students: list[StudentAttendance]
    unknown_faces: int
    unknown: list[dict[str, Any]]  # per unknown person: first and last seen, present, its crop's index
    absent: list[str]
    missing_spans: list[tuple[float, float]]
    version: int = REPORT_VERSION

    def to_dict(self) -> dict[str, Any]:
        data = asdict(self)
        data["students"] = [
            {**asdict(s), "spans": [list(span) for span in s.spans]} for s in self.students
        ]
        data["missing_spans"] = [list(span) for span in self.missing_spans]
        return data

    def csv_text(self) -> str:
        """One row per student seen, with the report's fields; formula-safe (as the first-frame CSV)."""
        out = io.StringIO()
        writer = csv.writer(out, lineterminator="\n")
        writer.writerow(ATTENDANCE_CSV_HEADER)
        for student in self.students:
            writer.writerow(student.csv_row())
        return out.getvalue()


def merge(
    video: str, duration_s: float, every_s: float, segments: Iterable[SegmentResult],
    roster: Iterable[str], records: dict[str, StudentRecord], tolerance: float, min_present_s: float,
) -> tuple[Report, list[bytes | None]]:
    """The report of a video from its segments (in any order), and the crop of each unknown person
    (``report.unknown[i]["crop"]`` is ``i``). ``roster``: every student who should have been there;
    ``records``: the records of the students seen (by name)."""
    ordered = sorted(segments, key=lambda s: s.start_s)
    times: dict[str, set[float]] = {}
    clear: set[str] = set()
    unknown_seen: list[UnknownPerson] = []
    sampled: set[float] = set()
    missing: list[tuple[float, float]] = []
    for segment in ordered:
        if segment.missing:
            missing.append((_time(segment.start_s), _time(min(segment.end_s, duration_s))))
            continue
        sampled.update(segment.sample_times)
        for name, seen in segment.seen.items():
            times.setdefault(name, set()).update(seen)
        clear.update(segment.clear)
        unknown_seen.extend(segment.unknown)
    threshold = min_present_for(duration_s, min_present_s)
    students = []
    for name in sorted(times):
        seen = sorted(times[name])
        if len(seen) < MIN_SAMPLES and name not in clear:
            continue  # one unclear sighting: a misread frame, not a student
        record = records.get(name) or StudentRecord("", name, "", "")
        present = _time(min(duration_s, len(seen) * every_s))
        students.append(StudentAttendance(
            name=name, id=record.id, major=record.major, year=record.year,
            first_seen_s=_time(seen[0]), last_seen_s=_time(seen[-1]), present_s=present,
            share=round(present / duration_s, 3) if duration_s > 0 else 0.0,
            status="present" if present >= threshold else "partial",
            spans=spans(seen, every_s, duration_s),
        ))
    people = [p for p in group_unknown(unknown_seen, tolerance) if len(set(p.times)) >= MIN_UNKNOWN_SAMPLES]
    unknown = []
    for index, person in enumerate(people):
        seen = sorted(set(person.times))
        unknown.append({
            "first_seen_s": _time(seen[0]), "last_seen_s": _time(seen[-1]),
            "present_s": _time(min(duration_s, len(seen) * every_s)), "crop": index,
            "spans": [list(span) for span in spans(seen, every_s, duration_s)],
        })
    present_names = {s.name for s in students}
    report = Report(
        video=video, duration_s=_time(duration_s), sample_every_s=every_s, frames_sampled=len(sampled),
        min_present_s=_time(threshold), students=students, unknown_faces=len(people), unknown=unknown,
        absent=sorted(set(roster) - present_names), missing_spans=missing,
    )
    return report, [p.crop for p in people]


def segment_bounds(duration_s: float, segment_s: float, every_s: float) -> list[tuple[float, float]]:
    """The spans a video of ``duration_s`` is cut into: ``segment_s`` long (a multiple of the sample
    interval, so no sample falls on a boundary twice), the last one shorter."""
    step = max(every_s, math.floor(segment_s / every_s) * every_s)
    count = max(1, math.ceil(duration_s / step))
    return [(_time(i * step), _time(min(duration_s, (i + 1) * step))) for i in range(count)]
