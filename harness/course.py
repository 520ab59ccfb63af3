"""A course-style classroom workload, built from the shared photos: what the course's Phase 2
material is (a face_recognition encoding file, the students' records, a handful of distinct
480p-1080p classroom clips uploaded under a hundred names), made here so that every CSV is known.

Used by ``tests/e2e/test_classroom_at_scale.py`` and ``bench/faces_at_scale.py``. The encoding
file is what face_recognition scripts write (a pickle of ``{"name": [...], "encoding": [...]}``,
float64 arrays, one entry per photo), computed with this repository's dlib engine, whose
descriptors are face_recognition's. No photo that is enrolled appears in a clip.
"""

from __future__ import annotations

import csv
import io
import pickle
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from harness.videos import make_classroom_video

# Enrolled students: name -> (their record's major and year, enrolment photos).
ENROLLED: dict[str, tuple[str, str, list[str]]] = {
    "Barack Obama": ("Law", "senior", ["obama/face_recognition-obama2.jpg", "obama/face_recognition-obama3.jpg"]),
    "Joe Biden": ("History, Politics", "4", ["biden/face_recognition-biden.jpg"]),
    "Kit Harington": ("Drama", "junior", ["kit_harington/face_recognition-john1.jpeg"]),
    "Rose Leslie": ("Drama", "sophomore", ["rose_leslie/face_recognition-img1.jpg"]),
    "Alex Lacamoire": ("Music", "senior", ["alex_lacamoire/face_recognition-alex_lacamoire1.jpg"]),
    "Lin-Manuel Miranda": ("Music", "freshman", ["lin_manuel_miranda/face_recognition-lin-manuel-miranda.png"]),
}
# The photo of each person that goes into the clips (never one that was enrolled); the
# lower-case ones are never enrolled: an extra, unknown face.
IN_CLIP = {
    "Barack Obama": "obama/face_recognition-obama.jpg",
    "Joe Biden": "biden/face_recognition-biden2.jpg",
    "Kit Harington": "kit_harington/face_recognition-johnsnow_test1.jpg",
    "Rose Leslie": "rose_leslie/face_recognition-img2.jpg",
    "Alex Lacamoire": "alex_lacamoire/face_recognition-img1.jpg",
    "stranger paul": "paul_rudd/facenet-pytorch-1.jpg",
    "stranger shea": "shea_whigham/facenet-pytorch-1.jpg",
}
SIZES = {"480p": (854, 480), "720p": (1280, 720), "1080p": (1920, 1080)}
# The distinct clips: name -> (size, who is in it, left to right).
CLIPS: dict[str, tuple[str, list[str]]] = {
    "obama-480p": ("480p", ["Barack Obama"]),
    "biden-and-a-stranger-480p": ("480p", ["Joe Biden", "stranger paul"]),
    "three-720p": ("720p", ["Barack Obama", "Kit Harington", "Rose Leslie"]),
    "only-a-stranger-720p": ("720p", ["stranger shea"]),
    "biden-720p": ("720p", ["Joe Biden"]),
    "two-1080p": ("1080p", ["Alex Lacamoire", "Joe Biden"]),
    "four-and-a-stranger-1080p": ("1080p", ["Kit Harington", "stranger paul", "Barack Obama", "Rose Leslie"]),
    "empty-room-480p": ("480p", []),
}
UPLOADS = 100


@dataclass(frozen=True)
class Course:
    encodings: Path  # the face_recognition-style pickle
    students: list[dict]  # the course's records format: [{"id", "name", "major", "year"}]
    clips: dict[str, Path]  # distinct clip -> its file
    uploads: list[tuple[str, str]]  # (key in VideoInputBucket, clip), back to back in this order
    expected_csv: dict[str, str]  # clip -> its exact CSV

    def csv_key(self, key: str) -> str:
        return key.rsplit(".", 1)[0] + ".csv"


def expected_csv(people: list[str]) -> str:
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(["name", "major", "year"])
    for name in sorted(p for p in people if p in ENROLLED):
        writer.writerow([name, ENROLLED[name][0], ENROLLED[name][1]])
    return out.getvalue()


def write_encodings(path: Path, people_dir: Path) -> Path:
    """face_recognition's format, made with the dlib engine: one 128-d float64 array per photo."""
    import cv2
    import numpy as np

    from iraas.classroom.engines import load_engine

    engine = load_engine("dlib")
    names, encodings = [], []
    for name, (_major, _year, photos) in ENROLLED.items():
        for photo in photos:
            image = cv2.imread(str(people_dir / photo))
            if image is None:
                raise ValueError(f"{photo}: not an image OpenCV can read")
            faces = engine.faces(cv2.cvtColor(image, cv2.COLOR_BGR2RGB))
            if len(faces) != 1:
                raise ValueError(f"{photo}: {len(faces)} faces, expected one")
            names.append(name)
            encodings.append(np.asarray(faces[0].descriptor, dtype=np.float64))
    path.write_bytes(pickle.dumps({"name": names, "encoding": encodings}))
    return path


def build_course(folder: Path, people_dir: Path, uploads: int = UPLOADS) -> Course:
    """The workload in ``folder``: the encoding file, the clips, and ``uploads`` keys over them
    (the clips in turn, as the course's workload script sends its few clips under many names)."""
    folder.mkdir(parents=True, exist_ok=True)
    clips = {
        clip: make_classroom_video(folder / f"{clip}.mp4", [people_dir / IN_CLIP[p] for p in people], SIZES[size])
        for clip, (size, people) in CLIPS.items()
    }
    names = list(CLIPS)
    keys = [(f"test_{n:03d}.mp4" if n % 10 else f"Room {n // 10}/test {n:03d}.mp4", names[n % len(names)])
            for n in range(uploads)]
    students = [
        {"id": str(1000 + n), "name": name, "major": major, "year": int(year) if year.isdigit() else year}
        for n, (name, (major, year, _photos)) in enumerate(ENROLLED.items())
    ]
    return Course(
        encodings=write_encodings(folder / "encoding", people_dir),
        students=students,
        clips=clips,
        uploads=keys,
        expected_csv={clip: expected_csv(people) for clip, (_size, people) in CLIPS.items()},
    )


@dataclass(frozen=True)
class CourseRun:
    upload_s: float  # first upload to last upload done
    seconds: float  # first upload to the last CSV seen
    csvs: dict[str, str]  # input key -> the CSV written for it


def run_course(s3: Any, input_bucket: str, output_bucket: str, course: Course, timeout_s: float = 600) -> CourseRun:
    """Upload every key back to back with boto3, wait (bounded) for every CSV, read them all."""
    from harness.embedded import wait_for_objects

    bodies = {clip: path.read_bytes() for clip, path in course.clips.items()}
    started = time.monotonic()
    for key, clip in course.uploads:
        s3.put_object(Bucket=input_bucket, Key=key, Body=bodies[clip])
    uploaded = time.monotonic()
    last = wait_for_objects(s3, output_bucket, {course.csv_key(k) for k, _ in course.uploads}, timeout_s)
    csvs = {
        key: s3.get_object(Bucket=output_bucket, Key=course.csv_key(key))["Body"].read().decode()
        for key, _ in course.uploads
    }
    return CourseRun(upload_s=uploaded - started, seconds=last - started, csvs=csvs)
