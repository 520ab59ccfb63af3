"""The classroom pipeline at course scale, end to end: ``python -m bench.faces_at_scale``.

Starts ``iraas up``, imports the students and enrols them from a face_recognition encoding file,
uploads a hundred videos (eight distinct 480p-1080p clips under a hundred names) back to back with
boto3, and reports the time from the first upload to the last CSV, and how many CSVs are exactly
right (the workload is ``harness/course.py``'s, as in ``tests/e2e/test_classroom_at_scale.py``).
Then, against the same stack, how long a face runner takes from its start to taking events: forked
from the function's zygote (models already loaded) and as a fresh interpreter (its own cold start).
Writes ``bench/out/faces_at_scale.json``.
"""

from __future__ import annotations

import argparse
import json
import statistics
import tempfile
import time
from pathlib import Path

from bench import OUT, save_report
from harness.course import CLIPS, build_course, run_course
from harness.data import shared_data_dir
from harness.embedded import RunningStack, running_stack
from iraas.config import REPO_ROOT, usable_cores
from iraas.local.functions import PREFORKED
from iraas.local.runners import LocalFunction, concurrency
from iraas.local.supervisor import Child
from iraas.local.zygote import Zygote

HANDLER = f"{REPO_ROOT / 'functions' / 'face_recognition' / 'handler.py'}:lambda_handler"


def _wait_for(path: Path, timeout_s: float = 120) -> float:
    started = time.perf_counter()
    while not path.exists():
        if time.perf_counter() - started > timeout_s:
            raise TimeoutError(f"{path} not written within {timeout_s} s")
        time.sleep(0.002)
    return time.perf_counter()


def runner_start(stack: RunningStack, repeats: int) -> dict:
    """Start to ready (the runner's ready file) of face runners, forked and spawned, on a scratch
    queue of the running stack (so that they take none of its events)."""
    queue = stack.client("sqs").create_queue(QueueName="bench-runner-start")["QueueUrl"]
    function = LocalFunction("BenchRunner", HANDLER, queue, timeout_s=30)
    ready, logs = stack.home / "ready", stack.home / "logs"
    zygote = Zygote(ready / "BenchRunner-zygote", logs / "BenchRunner-zygote.log", entry=PREFORKED,
                    options=function.zygote_options(), label="bench zygote")
    started = time.perf_counter()
    zygote.start(stack.env, REPO_ROOT)
    preload_ms = (_wait_for(zygote.ready_file) - started) * 1000
    forked, spawned = [], []
    try:
        for n in range(repeats):
            name = f"BenchRunner-forked-{n}"
            started = time.perf_counter()
            worker = zygote.spawn(name, ready / name, logs / f"{name}.log")
            forked.append((_wait_for(ready / name) - started) * 1000)
            worker.terminate()
            worker.wait_or_kill(time.monotonic() + 10)
        for n in range(repeats):
            name = f"BenchRunner-spawned-{n}"
            child = Child(name, function.command(ready / name), logs / f"{name}.log")
            started = time.perf_counter()
            child.start(stack.env, REPO_ROOT)
            spawned.append((_wait_for(ready / name) - started) * 1000)
            child.terminate()
            child.wait_or_kill(time.monotonic() + 10)
    finally:
        zygote.stop(time.monotonic() + 10)
    return {
        "zygote_preload_ms": round(preload_ms),
        "forked_ms": {"median": round(statistics.median(forked), 1), "all": [round(x, 1) for x in forked]},
        "spawned_ms": {"median": round(statistics.median(spawned)), "all": [round(x) for x in spawned]},
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--uploads", type=int, default=100)
    parser.add_argument("--repeats", type=int, default=3, help="runner starts measured of each kind")
    args = parser.parse_args(argv)
    people = shared_data_dir() / "faces" / "people"
    if not people.is_dir():
        raise SystemExit(f"the shared face photos are not at {people}; set IRAAS_TEST_DATA")
    with tempfile.TemporaryDirectory() as tmp:
        course = build_course(Path(tmp) / "course", people, args.uploads)
        home = Path(tmp) / "home"
        with running_stack(home) as stack:
            students = Path(tmp) / "student_data.json"
            students.write_text(json.dumps(course.students))
            stack.cli("students", "import", str(students))
            stack.cli("faces", "import-encodings", str(course.encodings))
            resources = stack.resources
            run = run_course(stack.client("s3"), resources["VideoInputBucket"], resources["VideoOutputBucket"], course)
            right = sum(run.csvs[key] == course.expected_csv[clip] for key, clip in course.uploads)
            starts = runner_start(stack, args.repeats)
    report = {
        "uploads": len(course.uploads),
        "distinct_clips": len(CLIPS),
        "csvs_right": right,
        "first_upload_to_last_csv_s": round(run.seconds, 2),
        "uploads_took_s": round(run.upload_s, 2),
        "videos_per_s": round(len(course.uploads) / run.seconds, 2),
        "face_runners_cap": concurrency(),
        "usable_cores": usable_cores(),
        "runner_start_to_ready": starts,
    }
    print(json.dumps(report, indent=2))
    save_report(OUT / "faces_at_scale.json", report)
    return 0 if right == len(course.uploads) else 1


if __name__ == "__main__":
    raise SystemExit(main())
