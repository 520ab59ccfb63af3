"""Attendance across a whole lecture: ``python -m bench.attendance --decode-only``.

Writes ``bench/out/attendance.json`` (keeping the sections it does not compute). ``decode``: how fast
each way of sampling a lecture (``iraas.classroom.sampling``: ``all``, ``nonref``, ``keyframes``,
``seek``, and ``auto`` with what it picks) reaches one frame a second, in seconds of video per second
of wall clock, on lectures built by ``harness.lectures`` (8 people arriving, 30 fps, 480p/720p/1080p,
one keyframe a second and x264's default spacing), and on the shared real clip. Each figure is the
median of ``--repeats`` runs; frames are converted to full-size RGB as the pipeline would.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import time
from pathlib import Path
from typing import Any

from bench import OUT, SCRATCH, save_report
from harness.data import shared_data_dir
from harness.lectures import arriving_class, make_lecture, one_photo_each
from iraas.classroom.sampling import STRATEGIES, probe, sample_frames

REPORT = OUT / "attendance.json"
RESOLUTIONS = {"480p": (854, 480), "720p": (1280, 720), "1080p": (1920, 1080)}
KEYFRAMES = {"keyframes-1s": 1.0, "x264-default": None}
FPS = 30


def cpu_model(cpuinfo: Path = Path("/proc/cpuinfo")) -> str:
    if cpuinfo.is_file():
        for line in cpuinfo.read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    return platform.processor() or platform.machine() or "unknown CPU"


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


def main(argv: list[str] | None = None) -> dict[str, Any]:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--decode-only", action="store_true", help="only the decode figures (the only section so far)")
    parser.add_argument("--seconds", type=float, default=120.0, help="length of each lecture built")
    parser.add_argument("--every", type=float, default=1.0, help="sample spacing in seconds")
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args(argv)
    report = json.loads(REPORT.read_text()) if REPORT.is_file() else {}
    folder = SCRATCH / "attendance"
    folder.mkdir(parents=True, exist_ok=True)
    report["decode"] = decode(args.seconds, args.every, args.repeats, folder)
    save_report(REPORT, report)
    return report


if __name__ == "__main__":
    main()
