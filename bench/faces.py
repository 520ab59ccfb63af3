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
from harness.data import shared_data_dir
from harness.videos import make_classroom_video
from iraas.config import REPO_ROOT

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


def _stats(values: list[float], low: bool = False) -> dict:
    if not values:
        return {"n": 0}
    extreme = ("min", min(values)) if low else ("max", max(values))
    return {"n": len(values), extreme[0]: round(extreme[1], 3), "mean": round(statistics.mean(values), 3)}


def distances(data: Path, sizes: dict[str, tuple[int, int]] | None = None,
              per_frame: tuple[int, ...] = (1, 2, 4)) -> dict:
    """Descriptor distances on the portraits, and from faces found in classroom video frames.

    Video: every photo goes into classroom videos (480p, 720p, 1080p; 1, 2 or 4 photos side by side,
    so faces of about 40 to 300 px); each face found is compared with the portraits of the people
    with two or more photos (the gallery), leaving out the very photo the video was made from.
    ``same``: to the same person's other photos (nearest); ``wrong``: to the nearest other person;
    ``stranger``: faces of people with one photo (never in the gallery) to their nearest person.
    ``ratio``: nearest / second-nearest person, for the margin rule.
    """
    import numpy as np

    from harness.videos import faces_in_classroom_videos
    from iraas.classroom.engines import ENGINES, warm_engine
    from iraas.classroom.enrol import read_photo

    engine = warm_engine("dlib")
    photos = sorted((data / "faces" / "people").glob("*/*"))
    portraits = {}
    for p in photos:
        faces = engine.faces(read_photo(p))
        if len(faces) == 1:
            portraits[p] = faces[0].descriptor
    same: list[float] = []
    diff: list[float] = []
    for (a, da), (b, db) in itertools.combinations(portraits.items(), 2):
        (same if a.parent == b.parent else diff).append(float(np.linalg.norm(da - db)))
    report: dict = {"portraits": {"photos": len(portraits), "same": _stats(same), "different": _stats(diff, low=True)}}

    people = {p.parent.name for p in portraits}
    enrolled = {who for who in people if sum(p.parent.name == who for p in portraits) >= 2}
    sizes = sizes or RESOLUTIONS
    with tempfile.TemporaryDirectory() as folder:
        found, missed = faces_in_classroom_videos(engine, photos, Path(folder), sizes, per_frame)
    video: dict[str, list[float]] = {"same": [], "wrong": [], "stranger": [], "same_ratio": [], "stranger_ratio": []}
    for photo, _where, descriptor in found:
        nearest: dict[str, float] = {}
        for p, d in portraits.items():
            if p != photo and p.parent.name in enrolled:
                who, dist = p.parent.name, float(np.linalg.norm(d - descriptor))
                nearest[who] = min(nearest.get(who, dist), dist)
        who = photo.parent.name
        if who in enrolled:
            others = min(v for k, v in nearest.items() if k != who)
            video["same"].append(nearest[who])
            video["wrong"].append(others)
            video["same_ratio"].append(nearest[who] / others)
        else:
            first, second = sorted(nearest.values())[:2]
            video["stranger"].append(first)
            video["stranger_ratio"].append(first / second)
    report["video_frames"] = {
        "faces": len(found), "photos_without_one_face": missed, "sizes": list(sizes), "per_frame": list(per_frame),
        "same": _stats(video["same"]), "wrong": _stats(video["wrong"], low=True),
        "stranger": _stats(video["stranger"], low=True), "same_ratio": _stats(video["same_ratio"]),
        "stranger_ratio": _stats(video["stranger_ratio"], low=True),
        "tolerance": ENGINES["dlib"].default_tolerance, "margin": ENGINES["dlib"].default_margin,
    }
    return report


def per_video(data: Path, repeats: int) -> dict:
    """Median first-frame-to-CSV and whole-invocation (S3 event to CSV) milliseconds for a
    two-student video at each resolution, and for a single-student 720p one."""
    import moto

    from iraas import aws
    from iraas.classroom.engines import warm_engine
    from iraas.classroom.enrol import enrol_photos
    from iraas.classroom.settings import load_face_settings
    from iraas.classroom.student_store import student_store
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
        cases = {label: (size, photos) for label, size in RESOLUTIONS.items()}
        cases["720p_single_face"] = (RESOLUTIONS["720p"], photos[:1])
        for label, (size, shown) in cases.items():
            key = f"bench-{label}.mp4"
            s3.upload_file(str(make_classroom_video(Path(folder) / key, shown, size)), settings.video_input_bucket, key)
            event = {"Records": [{"eventSource": "aws:s3", "eventName": "ObjectCreated:Put",
                                  "s3": {"bucket": {"name": settings.video_input_bucket}, "object": {"key": key}}}]}
            frame_to_csv, invocation = [], []
            for _ in range(repeats):
                started = time.perf_counter()
                outcome = lambda_handler(event, LocalContext("bench", 300))["videos"][0]
                invocation.append((time.perf_counter() - started) * 1000)
                frame_to_csv.append(outcome["latency_ms"])
            assert outcome["recognised"] == sorted(p.parent.name for p in shown), outcome
            figures[label] = {"first_frame_to_csv_ms": round(statistics.median(frame_to_csv)),
                              "invocation_ms": round(statistics.median(invocation))}
            print(f"faces, {label} video ({len(shown)} students): {figures[label]}", flush=True)
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
