"""Where the CPU goes while the service works: ``python -m bench.cpu_split`` (needs ``perf``).

On a warm ``iraas up`` (default settings), 1,000 course-style requests are sent 100 at a time, as
in ``bench.service``, while ``perf record -a`` samples both cores. Each sample is put down to the
process it ran in (endpoint, web tier, workers, the load generator, the rest of ``iraas up``,
idle) and to the library whose code was running (onnxruntime, libjpeg, Pillow, numpy, the
Python interpreter, the kernel, ...). It answers the question ``bench.service``'s CPU per image
leaves open: how much of the machine is the classifier's work and how much is moving requests
through the emulated AWS services. Writes ``bench/out/cpu_split.json``; prints the table.

Without ``perf`` on the PATH (Debian: ``linux-perf``), or without permission to sample
every CPU (``kernel.perf_event_paranoid``), it writes the reason instead and exits 0, so that
``make bench`` does not fail on a machine without it.
"""

from __future__ import annotations

import argparse
import os
import shutil
import signal
import subprocess
import sys
import time
from collections import Counter
from pathlib import Path
from typing import Any

from bench import OUT, SCRATCH, save_report, scratch
from bench.service import burst, photos, process_role, process_tree, start_stack, thousand

# Library file names (as perf reports them) -> what the table calls them; the first match wins.
LIBRARIES = (
    ("onnxruntime", "onnxruntime"),
    ("openvino", "OpenVINO"),  # libopenvino*.so and its CPU plugin
    ("libtbb", "OpenVINO"),  # its thread pool
    ("/tmp/perf-", "OpenVINO"),  # its JIT-compiled kernels (oneDNN's, named in /tmp/perf-<pid>.map)
    ("libjpeg", "libjpeg"),
    ("libturbojpeg", "libjpeg"),  # simplejpeg's libjpeg-turbo
    ("simplejpeg", "libjpeg"),
    ("opencv", "OpenCV"),
    ("cv2", "OpenCV"),
    ("_imaging", "Pillow"),
    ("_multiarray", "numpy"),
    ("libopenblas", "numpy"),
    ("libpython", "Python interpreter"),
    ("kernel", "kernel"),
    ("libc.so", "libc"),
    ("libsqlite", "SQLite"),
    ("libcrypto", "OpenSSL (hashes)"),
)
THE_MODEL = ("onnxruntime", "OpenVINO", "libjpeg", "OpenCV", "Pillow", "numpy")  # what the classifier alone also spends


def library(dso: str) -> str:
    for needle, name in LIBRARIES:
        if needle in dso:
            return name
    return "other"


def perf_problem() -> str | None:
    """Why this machine cannot sample every CPU, or None."""
    if shutil.which("perf") is None:
        return "perf is not installed (Debian: linux-perf)"
    probe = subprocess.run(["perf", "record", "-a", "-o", "/dev/null", "--", "true"], capture_output=True, text=True)
    if probe.returncode != 0:
        return f"perf record -a failed: {probe.stderr.strip().splitlines()[-1] if probe.stderr.strip() else probe.returncode}"
    return None


def samples(data: Path) -> Counter[tuple[int, str]]:
    """(pid, library) -> samples, from ``perf script``."""
    script = subprocess.run(
        ["perf", "script", "-i", str(data), "-F", "pid,ip,dso"], capture_output=True, text=True, check=True
    )
    counts: Counter[tuple[int, str]] = Counter()
    for line in script.stdout.splitlines():
        fields = line.split(maxsplit=2)
        if fields:
            counts[int(fields[0]), library(fields[2] if len(fields) > 2 else "")] += 1
    return counts


def run(args: argparse.Namespace) -> dict:
    home = scratch("cpu-split-home")
    stack = start_stack(args.port, home)
    try:
        paths = photos(200)
        for warm_up in (paths[:100], paths[100:]):  # workers started, every code path run once
            burst(stack, warm_up, {}, count_calls=False)
        time.sleep(1)
        roles = {pid: process_role(pid, stack.process.pid) for pid in process_tree(stack.process.pid)}
        roles[os.getpid()] = "load generator"
        roles[0] = "idle"
        data = SCRATCH / "cpu_split.perf.data"
        recorder = subprocess.Popen(
            ["perf", "record", "-a", "-F", str(args.frequency), "-o", str(data)],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
        )
        time.sleep(0.5)  # perf is sampling before the first request
        print("1,000 requests in waves of 100 while perf samples...", file=sys.stderr, flush=True)
        started = time.perf_counter()
        thousand(stack, paths, {})
        took = time.perf_counter() - started
        recorder.send_signal(signal.SIGINT)  # perf writes its file and exits
        recorder.wait(timeout=60)
    finally:
        stack.stop()
    by_role: dict[str, Counter[str]] = {}
    for (pid, lib), n in samples(data).items():
        by_role.setdefault(roles.get(pid, "other processes"), Counter())[lib] += n
    total = sum(sum(c.values()) for c in by_role.values())
    share = {
        role: {lib: round(n / total, 3) for lib, n in libs.most_common()}
        for role, libs in sorted(by_role.items(), key=lambda kv: -sum(kv[1].values()))
    }
    model = sum(share.get("workers", {}).get(lib, 0.0) for lib in THE_MODEL)
    return {
        "what": "share of all CPU samples on every core, by process and library, while 1,000 requests are served",
        "requests": 1000,
        "images_per_s": round(1000 / took, 1),
        "samples": total,
        "share": share,
        "role_share": {role: round(sum(libs.values()), 3) for role, libs in share.items()},
        "workers_model_share": round(model, 3),
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--frequency", type=int, default=499, help="samples per second per CPU")
    parser.add_argument("--port", type=int, default=8078)
    parser.add_argument("--out", type=Path, default=OUT / "cpu_split.json")
    args = parser.parse_args(argv)
    problem = perf_problem()
    report: dict[str, Any] = {"skipped": problem} if problem else run(args)
    save_report(args.out, report)
    if problem:
        print(f"bench.cpu_split skipped: {problem}", file=sys.stderr)
        return 0
    for role, libs in report["share"].items():
        parts = ", ".join(f"{lib} {100 * v:.1f}%" for lib, v in libs.items() if v >= 0.005)
        print(f"{role:16} {100 * report['role_share'][role]:5.1f}%  ({parts})")
    print(f"the classifier's own work in the workers: {100 * report['workers_model_share']:.1f}% of the CPU")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
