"""Attendance across a whole lecture: ``python -m bench.attendance``; part of ``make bench``.

Writes ``bench/out/attendance.json``, one section per part (``--only`` runs some and keeps the others'
figures from the last run). Lectures are built by ``harness.lectures``: eight people from the shared
photos arriving one after another in a still classroom, 30 fps, x264. Figures are on this machine (its
CPU model is in the file) and noisy: compare figures of one run.

- ``decode``: how fast each way of sampling a lecture (``iraas.classroom.sampling``: ``all``,
  ``nonref``, ``keyframes``, ``seek``, and ``auto`` with what it picks) reaches one frame a second,
  480p/720p/1080p, a keyframe a second and x264's default spacing, and the shared real clip (each
  figure the median of ``--repeats`` runs; frames converted to full-size RGB as the pipeline does).
- ``processing``: seconds of lecture per second of one invocation's work (sampling, detection,
  descriptors, matching: what a segment does, in one process) at 480p/720p/1080p: as the pipeline
  does it (faces followed from sample to sample, the detector's second pass only where the picture
  changed), with every face described in every sample, and with every sample detected afresh (what
  each saves), and whether all eight people were found.
- ``upload_to_report``: through ``iraas up`` (the face runners up to the machine's cores), a
  10-minute 720p lecture with 8 enrolled students, from the start of its upload to the first-frame
  CSV and to ``<stem>.attendance.json``.
- ``fan_out``: a 60-minute 720p lecture under simulated fan-out, against the same stack: the S3
  event's work (download, first-frame CSV, probe, segments queued), then each segment observed one
  by one, then the merge, each timed; the longest path is the event's work plus the slowest segment
  plus the merge (what unlimited Lambda concurrency would take), beside the sum of all segments.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import math
import os
import statistics
import time
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image

from bench import OUT, save_report, scratch
from bench.run import cpu_model
from harness.data import shared_data_dir
from harness.embedded import RunningStack, running_stack, wait_for_objects
from harness.lectures import arriving_class, make_lecture, one_photo_each, portraits
from iraas import aws
from iraas.classroom import keys
from iraas.classroom.engines import ENGINES, warm_engine
from iraas.classroom.gallery import Gallery
from iraas.classroom.lecture import SegmentTask, process_segment, write_report
from iraas.classroom.pipeline import process_video
from iraas.classroom.sampling import STRATEGIES, probe, sample_frames
from iraas.classroom.settings import load_face_settings
from iraas.classroom.student_store import student_store
from iraas.classroom.tracking import REFRESH_EVERY, Observer
from iraas.config import TEMPLATE, usable_cores
from iraas.local.runners import concurrency
from iraas.local.template import load_template

REPORT = OUT / "attendance.json"
RESOLUTIONS = {"480p": (854, 480), "720p": (1280, 720), "1080p": (1920, 1080)}
KEYFRAMES = {"keyframes-1s": 1.0, "x264-default": None}
FPS = 30


def measure(video: Path, every_s: float, repeats: int) -> dict[str, Any]:
    """Each strategy on ``video``, ``repeats`` times, the strategies taking turns (so that what else
    the machine does weighs on all of them alike); the median wall time of each."""
    info = probe(video, 100_000_000, 24 * 3600)
    walls: dict[str, list[float]] = {s: [] for s in STRATEGIES}
    stats: dict[str, dict[str, Any]] = {}
    samples = 0
    for _ in range(repeats):
        for strategy in STRATEGIES:
            stats[strategy] = {}
            started = time.perf_counter()
            samples = len([s.t for s in sample_frames(video, every_s, strategy=strategy, stats=stats[strategy])])
            walls[strategy].append(time.perf_counter() - started)
    figures: dict[str, Any] = {
        "size": [info.width, info.height], "fps": info.fps, "duration_s": round(info.duration_s, 3), "frames": info.frames,
        "keyframe_interval_s": None if info.keyframe_interval_s is None else round(info.keyframe_interval_s, 3),
        "samples": samples, "auto_picks": stats["auto"]["strategy"], "strategies": {},
    }
    for strategy in STRATEGIES:
        wall = statistics.median(walls[strategy])
        figures["strategies"][strategy] = {"wall_s": round(wall, 3), "speed_x": round(info.duration_s / wall, 1),
                                           "decoded_frames": stats[strategy]["decoded"]}
        print(f"  {video.name} {strategy:9} {wall:7.2f} s  {info.duration_s / wall:7.1f}x  "
              f"decoded {stats[strategy]['decoded']} ({stats[strategy]['strategy']})", flush=True)
    return figures


def decode(seconds: float, every_s: float, repeats: int, folder: Path) -> dict[str, Any]:
    photos = one_photo_each(shared_data_dir() / "faces" / "people")[:8]
    lectures: dict[str, Any] = {}
    for label, size in RESOLUTIONS.items():
        for spacing, keyframe_s in KEYFRAMES.items():
            video = folder / f"{label}-{spacing}.mp4"
            started = time.perf_counter()
            make_lecture(video, arriving_class(photos, seconds), seconds, size, fps=FPS, keyframe_s=keyframe_s, slots=8)
            build_s = time.perf_counter() - started
            print(f"built {video.name} ({seconds:.0f} s at {FPS} fps) in {build_s:.1f} s", flush=True)
            lectures[f"{label}/{spacing}"] = {"build_s": round(build_s, 2), **measure(video, every_s, repeats)}
            video.unlink()
    real = shared_data_dir() / "faces" / "video" / "short_hamilton_clip.mp4"
    return {
        "every_s": every_s, "lecture_s": seconds, "repeats": repeats,
        "cpu_model": cpu_model(), "cpus": os.cpu_count(),
        "unit": "speed_x: seconds of video sampled per second of wall clock",
        "lectures": lectures,
        "real_clip": {"video": real.name, **measure(real, every_s, repeats)} if real.is_file() else None,
    }


def _people(count: int) -> list[Path]:
    return one_photo_each(shared_data_dir() / "faces" / "people")[:count]


def _name(photo: Path) -> str:
    return photo.parent.name.replace("_", " ").title()


def _gallery(engine: Any, photos: list[Path]) -> Gallery:
    """Each person enrolled from their photo (the lecture shows a head-and-shoulders crop of it)."""
    rows = []
    for photo in photos:
        rgb = np.asarray(Image.open(photo).convert("RGB"))
        (descriptor,) = engine.describe(rgb, engine.detect(rgb))
        rows.append(descriptor)
    return Gallery([_name(p) for p in photos], np.stack(rows))


# How a segment's samples are observed: the pipeline; every face described in every sample (no
# following); every sample detected afresh (pass 2 not limited to what changed).
MODES = (("followed", REFRESH_EVERY, True), ("described_every_sample", 1, True), ("detected_afresh", REFRESH_EVERY, False))


def processing(seconds: float, every_s: float, folder: Path) -> dict[str, Any]:
    """One invocation's speed on a lecture at each size, as the pipeline works and without each of its savings."""
    engine = warm_engine("dlib")
    photos = _people(8)
    gallery = _gallery(engine, photos)
    people = arriving_class(portraits(photos, engine, folder / "portraits"), seconds)
    engine_spec = ENGINES["dlib"]
    sizes: dict[str, Any] = {}
    for label, size in RESOLUTIONS.items():
        video = make_lecture(folder / f"{label}.mp4", people, seconds, size, fps=FPS, keyframe_s=None, slots=8)
        figures: dict[str, Any] = {}
        for mode, refresh, reused in MODES:
            observer = Observer(engine, gallery, engine_spec.default_tolerance, engine_spec.default_margin, 0.0, seconds,
                                refresh_every=refresh, unchanged_reused=reused)
            started = time.perf_counter()
            result = observer.observe_all((s.t, s.rgb) for s in sample_frames(video, every_s))
            wall = time.perf_counter() - started
            found = sum(len(times) >= 2 for times in result.seen.values())
            figures[mode] = {"wall_s": round(wall, 2), "speed_x": round(seconds / wall, 1),
                             "descriptors": observer.described, "people_found": found}
            print(f"  {label} {mode:22} {wall:6.1f} s  {seconds / wall:5.1f}x  {observer.described} descriptors, "
                  f"{found} of {len(people)} found", flush=True)
        figures["following_saves"] = round(figures["described_every_sample"]["wall_s"] / figures["followed"]["wall_s"], 2)
        figures["reusing_unchanged_saves"] = round(figures["detected_afresh"]["wall_s"] / figures["followed"]["wall_s"], 2)
        sizes[label] = figures
        video.unlink()
    return {"lecture_s": seconds, "every_s": every_s, "people": len(people), "cpu_model": cpu_model(),
            "cpus": os.cpu_count(), "unit": "speed_x: seconds of lecture per second of one process's work",
            "sizes": sizes}


def repeat_video(source: Path, target: Path, times: int) -> Path:
    """``source`` played ``times`` times in a row, remuxed (no re-encoding): a long lecture built fast."""
    import av

    with av.open(str(source)) as given, av.open(str(target), "w", format="mp4") as out:
        stream = given.streams.video[0]
        copy = out.add_stream_from_template(stream)
        offset = 0
        for _ in range(times):
            given.seek(0)
            end = 0
            for packet in given.demux(stream):
                if packet.dts is None or packet.pts is None:
                    continue  # the demuxer's flush packet
                pts, dts = packet.pts, packet.dts
                end = max(end, pts + (packet.duration or 0))
                packet.pts, packet.dts = pts + offset, dts + offset
                packet.stream = copy
                out.mux(packet)
            offset += end
    return target


def _enrol(stack: RunningStack, photos: list[Path], folder: Path) -> None:
    records = [{"id": str(1001 + n), "name": _name(p), "major": "Physics", "year": "junior"} for n, p in enumerate(photos)]
    path = folder / "students.json"
    path.write_text(json.dumps(records))
    stack.cli("students", "import", str(path))
    for photo in photos:
        stack.cli("faces", "enroll", _name(photo), str(photo))


def upload_to_report(stack: RunningStack, video: Path, students: int) -> dict[str, Any]:
    """``video`` uploaded to the stack's video bucket; the times to its CSV and its report."""
    s3, resources = stack.client("s3"), stack.resources
    key = "lecture-10min.mp4"
    started = time.monotonic()
    s3.upload_file(str(video), resources["VideoInputBucket"], key)
    uploaded = time.monotonic()
    output = resources["VideoOutputBucket"]
    csv_at = wait_for_objects(s3, output, {keys.csv_key(key)}, 120, poll_s=0.1)
    report_at = wait_for_objects(s3, output, {keys.attendance_json_key(key)}, 900, poll_s=0.25)
    report = json.loads(s3.get_object(Bucket=output, Key=keys.attendance_json_key(key))["Body"].read())
    figures = {
        "video_mb": round(video.stat().st_size / 1e6, 1), "lecture_s": report["duration_s"],
        "upload_s": round(uploaded - started, 2), "upload_to_csv_s": round(csv_at - started, 2),
        "upload_to_report_s": round(report_at - started, 2),
        "speed_x": round(report["duration_s"] / (report_at - started), 1),
        "students_in_report": len(report["students"]), "students": students,
        "face_runners": concurrency(), "usable_cores": usable_cores(),
    }
    print(f"  10-minute lecture: CSV after {figures['upload_to_csv_s']} s, report after {figures['upload_to_report_s']} s "
          f"({figures['students_in_report']} of {students} students)", flush=True)
    return figures


def fan_out(stack: RunningStack, video: Path) -> dict[str, Any]:
    """The AWS path of a long lecture, each invocation timed one after another in this process."""
    settings = load_face_settings(stack.env)
    s3, sqs = aws.client(settings, "s3"), aws.client(settings, "sqs")
    # A bucket and a queue of the bench's own: the stack's runners take no part.
    bucket, key = "bench-fan-out", "lecture-60min.mp4"
    s3.create_bucket(Bucket=bucket)
    queue = sqs.create_queue(QueueName="bench-fan-out-segments", Attributes={"VisibilityTimeout": "900"})["QueueUrl"]
    settings = dataclasses.replace(settings, segment_queue_url=queue)
    s3.upload_file(str(video), bucket, key)
    engine = warm_engine(settings.engine)
    started = time.perf_counter()
    outcome = process_video(settings, bucket, key, engine)
    event_s = time.perf_counter() - started
    segments: list[float] = []
    merged = 0
    while messages := sqs.receive_message(QueueUrl=queue, MaxNumberOfMessages=10, WaitTimeSeconds=0).get("Messages"):
        for message in messages:
            task = SegmentTask.from_message(message["Body"])
            started = time.perf_counter()
            merged += process_segment(settings, task, 1, engine).merged
            segments.append(time.perf_counter() - started)
            sqs.delete_message(QueueUrl=queue, ReceiptHandle=message["ReceiptHandle"])
            print(f"\r  segment {len(segments)} of {outcome.attendance_segments}: {segments[-1]:.1f} s", end="", flush=True)
    print(flush=True)
    # The merge again, alone (it rewrites the same report), to take it out of its segment's time.
    started = time.perf_counter()
    report = write_report(settings, task, student_store(settings))
    merge_s = time.perf_counter() - started
    longest = event_s + max(segments) + merge_s
    # On AWS at most FaceSegmentConcurrency segments run at once: in waves, each no longer than the slowest.
    at_once = int(load_template(TEMPLATE)["Parameters"]["FaceSegmentConcurrency"]["Default"])
    in_waves = event_s + math.ceil(len(segments) / at_once) * max(segments) + merge_s
    figures = {
        "lecture_s": report["duration_s"], "segment_s": settings.segment_s, "segments": len(segments), "merged": merged,
        "event_s": round(event_s, 2), "segment_median_s": round(statistics.median(segments), 2),
        "segment_max_s": round(max(segments), 2), "merge_s": round(merge_s, 2),
        "longest_path_s": round(longest, 1), "one_after_another_s": round(event_s + sum(segments), 1),
        "segment_concurrency": at_once, "in_waves_at_most_s": round(in_waves, 1),
        "students_in_report": len(report["students"]), "missing_spans": report["missing_spans"],
    }
    print(f"  60-minute lecture fanned out: event {figures['event_s']} s + slowest segment {figures['segment_max_s']} s "
          f"+ merge {figures['merge_s']} s = {figures['longest_path_s']} s (one after another: "
          f"{figures['one_after_another_s']} s)", flush=True)
    return figures


def through_the_stack(folder: Path) -> dict[str, Any]:
    """``upload_to_report`` and ``fan_out``, against one ``iraas up``."""
    engine = warm_engine("dlib")
    photos = _people(8)
    people = arriving_class(portraits(photos, engine, folder / "portraits"), 600.0)
    ten = make_lecture(folder / "lecture-10min.mp4", people, 600.0, (1280, 720), fps=FPS, keyframe_s=None, slots=8)
    sixty = repeat_video(ten, folder / "lecture-60min.mp4", 6)
    figures: dict[str, Any] = {}
    with running_stack(scratch("attendance-stack")) as stack:  # one image worker, idle
        _enrol(stack, photos, folder)
        figures["upload_to_report"] = upload_to_report(stack, ten, len(photos))
        figures["fan_out"] = fan_out(stack, sixty)
    return figures


SECTIONS = ("decode", "processing", "upload_to_report", "fan_out")


def main(argv: list[str] | None = None) -> dict[str, Any]:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--only", help="comma-separated sections (default: all): " + ",".join(SECTIONS))
    parser.add_argument("--seconds", type=float, default=120.0, help="length of the decode and processing lectures")
    parser.add_argument("--every", type=float, default=1.0, help="sample spacing in seconds")
    parser.add_argument("--repeats", type=int, default=3, help="runs of each decode figure")
    args = parser.parse_args(argv)
    sections = args.only.split(",") if args.only else list(SECTIONS)
    if unknown := [s for s in sections if s not in SECTIONS]:
        parser.error(f"unknown section {unknown[0]!r}; the sections are {', '.join(SECTIONS)}")
    report = json.loads(REPORT.read_text()) if REPORT.is_file() else {}
    folder = scratch("attendance")
    if "decode" in sections:
        report["decode"] = decode(args.seconds, args.every, args.repeats, folder)
    if "processing" in sections:
        report["processing"] = processing(args.seconds, args.every, folder)
    if "upload_to_report" in sections or "fan_out" in sections:
        report |= through_the_stack(folder)
    save_report(REPORT, report)
    return report


if __name__ == "__main__":
    main()
