"""End to end at course scale: `iraas up`, students enrolled from a face_recognition encoding file,
a hundred classroom videos (eight distinct 480p-1080p clips under a hundred names, some with an
unknown face, one with nobody) uploaded back to back with boto3, every CSV checked exactly.

The workload is ``harness/course.py``'s, shared with ``python -m bench.faces_at_scale``, which
reports the time from the first upload to the last CSV; this test asserts no timing (its waits are
bounds).
"""

from __future__ import annotations

import json

import pytest

from harness.course import build_course, run_course
from harness.embedded import running_stack

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def course(faces_dir, tmp_path_factory):
    return build_course(tmp_path_factory.mktemp("course"), faces_dir / "people")


@pytest.fixture(scope="module")
def course_stack(tmp_path_factory, model_path, course):
    """The stack, with the course's students imported and enrolled from its encoding file."""
    home = tmp_path_factory.mktemp("iraas-course")
    with running_stack(home) as stack:
        students = home / "student_data.json"
        students.write_text(json.dumps(course.students))
        stack.cli("students", "import", str(students))
        stack.cli("faces", "import-encodings", str(course.encodings))
        yield stack


def test_a_hundred_videos_uploaded_back_to_back_all_get_their_exact_csv(course_stack, course):
    resources = course_stack.resources

    run = run_course(
        course_stack.client("s3"), resources["VideoInputBucket"], resources["VideoOutputBucket"], course,
        timeout_s=600,
    )

    wrong = {key: csv for key, csv in run.csvs.items() if csv != course.expected_csv[dict(course.uploads)[key]]}
    assert not wrong, f"{len(wrong)} of {len(run.csvs)} CSVs wrong, e.g. {next(iter(wrong.items()))}"
    assert len(run.csvs) == len(course.uploads) == 100
    print(f"\n{len(course.uploads)} videos: the last CSV {run.seconds:.1f} s after the first upload "
          f"(uploads took {run.upload_s:.1f} s)")
