"""End to end: `iraas up`, enrol a class with the CLI (and one student over HTTP), drop videos in the
bucket with boto3, read the CSVs."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path

import pytest

from harness.embedded import running_stack
from harness.videos import make_classroom_video

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def classroom_stack(tmp_path_factory, model_path, classroom):
    """`iraas up` running, the class imported and enrolled through the CLI."""
    home = tmp_path_factory.mktemp("iraas-classroom")
    with running_stack(home, {"IRAAS_LOCAL_FUNCTION_CONCURRENCY": "2"}) as stack:
        students = home / "students.json"
        students.write_text(json.dumps(classroom.students))
        stack.cli("students", "import", str(students))
        for name, photos in classroom.enrolled.items():
            stack.cli("faces", "enroll", name, *map(str, photos))
        yield {"env": stack.env, "resources": stack.resources, "s3": stack.client("s3"), "url": stack.url}


def wait_for_object(s3, bucket: str, key: str, timeout_s: float = 180) -> str:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        try:
            return s3.get_object(Bucket=bucket, Key=key)["Body"].read().decode()
        except s3.exceptions.NoSuchKey:
            time.sleep(0.5)
    raise AssertionError(f"no {key} in {bucket} within {timeout_s} s")


def test_videos_uploaded_with_boto3_get_their_csvs(classroom_stack, classroom):
    s3, resources = classroom_stack["s3"], classroom_stack["resources"]
    names = {"one": "one.mp4", "two": "Room 101/two people.mp4", "nobody": "nobody.mp4", "unknown": "unknown.mp4"}
    for video, key in names.items():  # all at once: the runners take them in parallel
        s3.upload_file(str(classroom.videos[video]), resources["VideoInputBucket"], key)

    csvs = {video: wait_for_object(s3, resources["VideoOutputBucket"], key.rsplit(".", 1)[0] + ".csv")
            for video, key in names.items()}

    assert csvs == {video: classroom.expected_csv[video] for video in names}


def test_videos_submit_waits_and_prints_the_csv(classroom_stack, classroom):
    result = subprocess.run(
        [sys.executable, "-m", "iraas.cli", "videos", "submit", str(classroom.videos["kit"]), "--wait", "180"],
        env=classroom_stack["env"], capture_output=True, text=True, timeout=240,
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout == classroom.expected_csv["kit"]


def test_function_runners_that_crash_are_replaced(classroom_stack, classroom):
    s3, resources = classroom_stack["s3"], classroom_stack["resources"]
    ready = Path(classroom_stack["env"]["IRAAS_HOME"]) / "ready"
    # The runners are forked from the function's zygote (its ready file holds its pid).
    zygote = (ready / "FaceRecognitionFunction-zygote").read_text().strip()

    def pids() -> set[str]:
        return set(subprocess.run(["pgrep", "-P", zygote], capture_output=True, text=True).stdout.split())

    crashed = pids()
    assert len(crashed) >= 1  # one warm runner at least, as Lambda keeps an environment
    killed_at = time.time()
    for pid in crashed:
        os.kill(int(pid), signal.SIGKILL)
    deadline = time.monotonic() + 60
    while not (pids() - crashed and all(
        f.stat().st_mtime >= killed_at for f in ready.glob("FaceRecognitionFunction-[0-9]*")
    )):
        assert time.monotonic() < deadline, "the crashed runners were not replaced within 60 s"
        time.sleep(0.5)

    s3.upload_file(str(classroom.videos["one"]), resources["VideoInputBucket"], "after the crash.mp4")

    csv = wait_for_object(s3, resources["VideoOutputBucket"], "after the crash.csv")
    assert csv == classroom.expected_csv["one"]


def http(method: str, url: str, body: bytes | None = None, content_type: str | None = None) -> tuple[int, dict]:
    headers = {"Content-Type": content_type} if content_type else {}
    request = urllib.request.Request(url, data=body, method=method, headers=headers)
    try:
        with urllib.request.urlopen(request, timeout=30) as response:
            return response.status, json.loads(response.read())
    except urllib.error.HTTPError as exc:
        return exc.code, json.loads(exc.read())


def test_a_face_enrolled_over_http_is_recognised_in_the_next_video(classroom_stack, faces_dir, tmp_path):
    """The web tier stores the photo; the bucket's notification takes it to the function's runners."""
    s3, resources, url = classroom_stack["s3"], classroom_stack["resources"], classroom_stack["url"]
    people = faces_dir / "people" / "rose_leslie"
    rose = [{"id": "1005", "name": "Rose Leslie", "major": "Drama", "year": "sophomore"}]
    assert http("POST", f"{url}/v1/students", json.dumps(rose).encode(), "application/json") == (
        200, {"imported": 1, "new": 1, "changed": 0, "unchanged": 0})

    status, answer = http("POST", f"{url}/v1/students/Rose%20Leslie/photos",
                          (people / "face_recognition-img1.jpg").read_bytes(), "image/jpeg")
    assert status == 202
    deadline = time.monotonic() + 180
    while (outcome := http("GET", f"{url}/v1/enrolments/{answer['enrolment']}"))[0] == 202:
        assert time.monotonic() < deadline, "no enrolment outcome within 180 s"
        time.sleep(0.5)
    assert outcome == (200, {"enrolment": answer["enrolment"], "student": "Rose Leslie", "status": "enrolled",
                             "faces": 1, "error": None})

    video = make_classroom_video(tmp_path / "rose.mp4", [people / "face_recognition-img2.jpg"])
    s3.upload_file(str(video), resources["VideoInputBucket"], "rose.mp4")
    csv = wait_for_object(s3, resources["VideoOutputBucket"], "rose.csv")
    assert csv == "name,major,year\nRose Leslie,Drama,sophomore\n"
