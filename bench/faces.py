"""The face pipeline's figures: cold start, per-video latency (first frame to CSV), distances.

``python -m bench.faces`` (also part of ``make bench``) writes ``bench/out/faces.json``.
The handler runs in-process against moto, so the figures are the function's own work plus local
S3/DynamoDB calls; in Lambda, network and memory size (vCPUs) change them.
"""

from __future__ import annotations

import argparse
import itertools
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from bench import OUT, save_report
from iraas.paths import REPO_ROOT
from tests.support.data import shared_data_dir
from tests.support.videos import make_classroom_video

HANDLER = REPO_ROOT / "functions" / "face_recognition" / "handler.py"
RESOLUTIONS = {"480p": (854, 480), "720p": (1280, 720), "1080p": (1920, 1080)}


def cold_start(repeats: int = 3) -> dict:
    """A fresh interpreter loading the handler (imports, settings, engine, warm-up), as Lambda's init."""
    code = (
        "import time, importlib.util; t = time.perf_counter()\n"
        f"s = importlib.util.spec_from_file_location('h', {str(HANDLER)!r})\n"
        "s.loader.exec_module(importlib.util.module_from_spec(s)); print((time.perf_counter() - t) * 1000)\n"
    )
    env = {**os.environ, "IRAAS_VIDEO_OUTPUT_BUCKET": "bench", "IRAAS_STUDENTS_TABLE": "bench"}
    init, process = [], []
    for _ in range(repeats):
        started = time.perf_counter()
        out = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, check=True)
        process.append((time.perf_counter() - started) * 1000)
        init.append(float(out.stdout.strip().splitlines()[-1]))
    return {"handler_init_ms": round(statistics.median(init)), "process_start_to_ready_ms": round(statistics.median(process))}


def distances(data: Path) -> dict:
    import numpy as np

    from iraas.classroom.engines import warm_engine
    from iraas.classroom.enrol import read_photo

    engine = warm_engine("dlib")
    found = [(p.parent.name, engine.faces(read_photo(p))) for p in sorted((data / "faces" / "people").glob("*/*"))]
    pairs = [(who, faces[0].descriptor) for who, faces in found if len(faces) == 1]
    same: list[float] = []
    diff: list[float] = []
    for (a, da), (b, db) in itertools.combinations(pairs, 2):
        (same if a == b else diff).append(float(np.linalg.norm(da - db)))
    return {"photos": len(pairs), "same_pairs": len(same), "same_max": round(max(same), 3),
            "same_mean": round(statistics.mean(same), 3), "different_pairs": len(diff),
            "different_min": round(min(diff), 3), "different_mean": round(statistics.mean(diff), 3)}


def per_video(data: Path, repeats: int) -> dict:
    """Median first-frame-to-CSV and whole-invocation milliseconds for a two-student video."""
    import moto

    from iraas import aws
    from iraas.classroom.engines import warm_engine
    from iraas.classroom.enrol import enrol_photos
    from iraas.classroom.settings import load_face_settings
    from iraas.classroom.students import student_store
    from iraas.config import RESOURCE_ENV
    from iraas.local.lambda_runner import LocalContext, load_handler
    from iraas.local.provision import provision
    from iraas.local.template import load_template

    os.environ.update({**aws.local_credentials_env(), "AWS_DEFAULT_REGION": "us-east-1"})
    people = data / "faces" / "people"
    figures = {}
    with moto.mock_aws(), tempfile.TemporaryDirectory() as folder:
        aws.reset_clients()
        resources = provision(load_template(REPO_ROOT / "template.yaml"), endpoint_url=None)
        for logical_id, var in RESOURCE_ENV.items():
            os.environ[var] = resources[logical_id]
        settings = load_face_settings()
        store = student_store(settings)
        engine = warm_engine("dlib")
        enrol_photos(store, engine, "obama", [people / "obama" / "face_recognition-obama2.jpg"])
        enrol_photos(store, engine, "biden", [people / "biden" / "face_recognition-biden.jpg"])
        lambda_handler = load_handler(f"{HANDLER}:lambda_handler")
        s3 = aws.client(settings, "s3")
        photos = [people / "obama" / "face_recognition-obama.jpg", people / "biden" / "face_recognition-biden2.jpg"]
        for label, size in RESOLUTIONS.items():
            key = f"bench-{label}.mp4"
            s3.upload_file(str(make_classroom_video(Path(folder) / key, photos, size)), settings.video_input_bucket, key)
            event = {"Records": [{"eventSource": "aws:s3", "eventName": "ObjectCreated:Put",
                                  "s3": {"bucket": {"name": settings.video_input_bucket}, "object": {"key": key}}}]}
            frame_to_csv, invocation = [], []
            for _ in range(repeats):
                started = time.perf_counter()
                outcome = lambda_handler(event, LocalContext("bench", 300))["videos"][0]
                invocation.append((time.perf_counter() - started) * 1000)
                frame_to_csv.append(outcome["latency_ms"])
            assert outcome["recognised"] == ["biden", "obama"], outcome
            figures[label] = {"first_frame_to_csv_ms": round(statistics.median(frame_to_csv)),
                              "invocation_ms": round(statistics.median(invocation))}
            print(f"faces, {label} two-student video: {figures[label]}", flush=True)
    aws.reset_clients()
    return figures


def run(data: Path | None = None, repeats: int = 3) -> dict:
    data = data or shared_data_dir()
    if not (data / "faces" / "people").is_dir():
        sys.exit(f"no face photos under {data / 'faces'}; set IRAAS_TEST_DATA")
    report = {"cold_start": cold_start(), "per_video": per_video(data, repeats), "distances": distances(data)}
    print(f"faces, cold start: {report['cold_start']}", flush=True)
    print(f"faces, distances: {report['distances']}", flush=True)
    return report


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--out", type=Path, default=OUT / "faces.json")
    args = parser.parse_args(argv)
    save_report(args.out, {"cpus": os.cpu_count(), **run(repeats=args.repeats)})
    return 0


if __name__ == "__main__":
    sys.exit(main())
