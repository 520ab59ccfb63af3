"""End to end: `iraas up` takes a lecture's attendance through its local runners as AWS would: the
first-frame CSV first, then the lecture's segments fanned out through VideoSegmentQueue to the face
function's SQS runners, and the report merged by the last segment. A runner killed mid-segment
gives its segment back to the queue; the report is still complete, and written once."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import time
from pathlib import Path

import pytest

from harness.embedded import running_stack
from iraas.classroom import keys
from iraas.classroom.run_store import DynamoRunStore

pytestmark = pytest.mark.slow

SEGMENT_S = 30  # four segments of a two-minute lecture, each a few seconds of a runner's work


def wait_for(what: str, check, timeout_s: float, every_s: float = 0.2):
    deadline = time.monotonic() + timeout_s
    while (found := check()) is None:
        assert time.monotonic() < deadline, f"{what} not within {timeout_s} s"
        time.sleep(every_s)
    return found


def get(s3, bucket: str, key: str) -> bytes | None:
    try:
        return s3.get_object(Bucket=bucket, Key=key)["Body"].read()
    except s3.exceptions.NoSuchKey:
        return None


def test_a_killed_segment_runner_loses_nothing_and_the_report_is_written_once(tmp_path, model_path, classroom, faces_dir):
    from harness.lectures import Appearance, make_lecture

    people = faces_dir / "people"
    video = make_lecture(tmp_path / "lecture.mp4", [
        Appearance(people / "obama/face_recognition-obama.jpg", 0.0, 120.0, 0),
        Appearance(people / "biden/face_recognition-biden2.jpg", 45.0, 120.0, 1),  # late
        Appearance(people / "paul_rudd/facenet-pytorch-1.jpg", 5.0, 20.0, 2),  # nobody enrolled
    ], duration_s=120.0)
    home = tmp_path / "home"
    env = {"IRAAS_LOCAL_FUNCTION_CONCURRENCY": "2", "IRAAS_ATTENDANCE_SEGMENT_S": str(SEGMENT_S)}
    with running_stack(home, env) as stack:
        students = home / "students.json"
        students.write_text(json.dumps(classroom.students))
        stack.cli("students", "import", str(students))
        for name, photos in classroom.enrolled.items():
            stack.cli("faces", "enroll", name, *map(str, photos))
        s3, sqs, resources = stack.client("s3"), stack.client("sqs"), stack.resources
        s3.upload_file(str(video), resources["VideoInputBucket"], "lecture.mp4")

        # The first-frame CSV comes first, as it did before attendance.
        csv = wait_for("the CSV", lambda: get(s3, resources["VideoOutputBucket"], "lecture.csv"), 180)
        assert csv.decode() == "name,major,year\nBarack Obama,Law,senior\n"

        # Kill every segment runner while a segment is being observed.
        queue = resources["VideoSegmentQueue"]

        def in_flight() -> int | None:
            attributes = sqs.get_queue_attributes(QueueUrl=queue, AttributeNames=["ApproximateNumberOfMessagesNotVisible"])
            return int(attributes["Attributes"]["ApproximateNumberOfMessagesNotVisible"]) or None

        wait_for("a segment in flight", in_flight, 120, every_s=0.05)
        zygote = (home / "ready" / "FaceRecognitionFunction-sqs-zygote").read_text().strip()
        runners = subprocess.run(["pgrep", "-P", zygote], capture_output=True, text=True).stdout.split()
        assert runners, "no segment runner to kill"
        for pid in runners:
            os.kill(int(pid), signal.SIGKILL)

        body = wait_for("the attendance report",
                        lambda: get(s3, resources["VideoOutputBucket"], "lecture.attendance.json"), 300)
        report = json.loads(body)
        by_name = {s["name"]: s for s in report["students"]}
        assert set(by_name) == {"Barack Obama", "Joe Biden"}
        assert (by_name["Barack Obama"]["first_seen_s"], by_name["Barack Obama"]["last_seen_s"]) == (0.0, 119.0)
        assert abs(by_name["Joe Biden"]["first_seen_s"] - 45.0) <= 1.0
        assert report["unknown_faces"] == 1 and report["missing_spans"] == [] and report["frames_sampled"] == 120
        assert report["absent"] == ["Kit Harington"]

        etag = s3.head_object(Bucket=resources["VideoInputBucket"], Key="lecture.mp4")["ETag"]
        runs = DynamoRunStore(stack.client("dynamodb"), resources["AttendanceRunsTable"])
        run = runs.get(keys.run_id(resources["VideoInputBucket"], "lecture.mp4", etag))
        assert run is not None and run.done == set(range(4)) and run.missing == set()
        assert run.merges == 1  # written once, though a segment was observed twice
        logs = "".join(p.read_text() for p in Path(home, "logs").glob("FaceRecognitionFunction-sqs-*.log"))
        tries = [json.loads(line)["receives"] for line in logs.splitlines() if '"segment observed"' in line]
        # Four segments observed to the end, the killed one on its second try.
        assert sorted(tries) == [1, 1, 1, 2], logs
