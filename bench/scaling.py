"""A burst through the embedded stack: queue depth and workers over time, as a CSV and a plot.

``python -m bench.scaling`` (part of ``make bench``) writes ``bench/out/scaling.csv`` and
``bench/out/scaling.png``; make bench copies it to docs/scaling-burst.png for the benchmarks page.
"""

from __future__ import annotations

import argparse
import csv
import os
import subprocess
import sys
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from bench import OUT, scratch
from harness.data import shared_data_dir
from iraas.config import REPO_ROOT


def run_burst(burst: int, max_workers: int, port: int) -> list[dict]:
    import requests

    data = shared_data_dir()
    photos = sorted((data / "imagenet-sample" / "images").glob("*.JPEG"))
    if not photos:
        sys.exit(f"no photos under {data}; set IRAAS_TEST_DATA")
    env = {**os.environ, "IRAAS_MAX_WORKERS": str(max_workers), "IRAAS_SCALER_TICK_S": "1"}
    home = scratch("scaling-home")
    process = subprocess.Popen(
        [sys.executable, "-m", "iraas.cli", "up", "--port", str(port), "--home", str(home)],
        cwd=REPO_ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
    )
    url = f"http://127.0.0.1:{port}"
    samples: list[dict] = []
    try:
        for line in process.stdout or ():
            if "ready on" in line:
                break
        started = time.monotonic()

        def sample() -> dict:
            stats = requests.get(f"{url}/v1/stats", timeout=10).json()
            row = {
                "t": round(time.monotonic() - started, 2),
                "queued": stats["queue"]["visible"] + stats["queue"]["in_flight"],
                "running": stats["workers"]["running"],
                "desired": stats["workers"]["desired"],
            }
            samples.append(row)
            return row

        done = threading.Event()

        def sampler() -> None:  # samples on its own thread, so sending does not pause them
            while not done.is_set():
                row = sample()
                if row["t"] > 15 and row["queued"] == 0 and row["running"] == 0:
                    done.set()
                time.sleep(0.5)

        thread = threading.Thread(target=sampler, daemon=True)
        thread.start()
        time.sleep(3)  # idle before the burst

        def send(i: int) -> None:
            body = photos[i % len(photos)].read_bytes()
            requests.post(f"{url}/v1/images?wait=0", data=body, headers={"Content-Type": "image/jpeg"}, timeout=60)

        with ThreadPoolExecutor(max_workers=32) as pool:
            list(pool.map(send, range(burst)))
        print(f"sent {burst} requests", flush=True)
        done.wait(180)
        done.set()
        thread.join(timeout=15)
    finally:
        process.terminate()
        process.wait(timeout=15)
    return samples


def plot(samples: list[dict], path: Path, burst: int, max_workers: int) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    t = [s["t"] for s in samples]
    fig, queue_axis = plt.subplots(figsize=(8, 4))
    queue_axis.plot(t, [s["queued"] for s in samples], color="tab:blue", label="queued requests")
    queue_axis.set_xlabel("seconds")
    queue_axis.set_ylabel("queued requests (visible + in flight)", color="tab:blue")
    workers_axis = queue_axis.twinx()
    workers_axis.step(t, [s["running"] for s in samples], where="post", color="tab:red", label="running")
    workers_axis.step(t, [s["desired"] for s in samples], where="post", color="tab:orange", linestyle="--", label="desired")
    workers_axis.set_ylabel("workers", color="tab:red")
    workers_axis.set_ylim(0, max_workers + 1)
    fig.legend(loc="center right", bbox_to_anchor=(0.88, 0.6))
    queue_axis.set_title(f"A burst of {burst} requests, IRAAS_MAX_WORKERS={max_workers} (iraas up)")
    fig.tight_layout()
    fig.savefig(path, dpi=100)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--burst", type=int, default=100)
    parser.add_argument("--max-workers", type=int, default=6)
    parser.add_argument("--port", type=int, default=8078)
    args = parser.parse_args(argv)
    OUT.mkdir(parents=True, exist_ok=True)
    samples = run_burst(args.burst, args.max_workers, args.port)
    with open(OUT / "scaling.csv", "w", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=["t", "queued", "running", "desired"])
        writer.writeheader()
        writer.writerows(samples)
    plot(samples, OUT / "scaling.png", args.burst, args.max_workers)
    peak = max(s["running"] for s in samples)
    print(f"peak workers {peak}; wrote {OUT / 'scaling.csv'} and {OUT / 'scaling.png'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
