"""``make bench``: measure the classifier and the embedded stack; write the figures to a file.

Figures go to ``bench/out/bench.json`` (and are printed). They are what the README quotes.
Timings on a shared 2-core machine are noisy: compare ratios from one run, not across runs.
"""

from __future__ import annotations

import argparse
import os
import platform
import statistics
import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from bench import OUT, save_report
from iraas.config import default_model_dir
from iraas.paths import REPO_ROOT
from tests.support.data import shared_data_dir


def _photos(data_dir: Path, count: int) -> list[Path]:
    folder = data_dir / "imagenet-sample" / "images"
    photos = sorted(folder.glob("*.JPEG"))[:count]
    if not photos:
        sys.exit(f"no photos under {folder}; set IRAAS_TEST_DATA")
    return photos


def bench_classifier(photos: list[Path], repeats: int = 3) -> dict:
    """Milliseconds per image for decode + preprocess + inference, at batch sizes 1 and 8."""
    from iraas.images.classify.runtime import load_classifier

    classifier = load_classifier(default_model_dir())
    blobs = [p.read_bytes() for p in photos]
    figures = {}
    for batch in (1, 8):
        runs = []
        for _ in range(repeats):
            started = time.perf_counter()
            for i in range(0, len(blobs), batch):
                classifier.classify_bytes(blobs[i : i + batch])
            runs.append((time.perf_counter() - started) * 1000 / len(blobs))
        figures[f"batch_{batch}_ms_per_image"] = round(statistics.median(runs), 1)
        print(f"classifier, batch {batch}: {figures[f'batch_{batch}_ms_per_image']} ms per image", flush=True)
    return figures


def bench_stack(photos: list[Path], port: int, concurrency: int, workers: int) -> dict:
    """Requests through `iraas up` over HTTP: latency percentiles and throughput."""
    import requests

    home = OUT / "iraas-home"
    process = subprocess.Popen(
        [sys.executable, "-m", "iraas.cli", "up", "--port", str(port), "--workers", str(workers), "--home", str(home)],
        cwd=REPO_ROOT,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    try:
        for line in process.stdout or ():
            if "ready on" in line:
                break
        else:
            raise RuntimeError("iraas up exited before it was ready")
        url = f"http://127.0.0.1:{port}/v1/images?wait=60"

        def send(path: Path) -> float:
            started = time.perf_counter()
            response = requests.post(url, data=path.read_bytes(), headers={"Content-Type": "image/jpeg"}, timeout=90)
            response.raise_for_status()
            return (time.perf_counter() - started) * 1000

        send(photos[0])  # warm the path
        started = time.perf_counter()
        with ThreadPoolExecutor(max_workers=concurrency) as pool:
            latencies = sorted(pool.map(send, photos))
        elapsed = time.perf_counter() - started
    finally:
        process.terminate()
        process.wait(timeout=15)
    figures = {
        "requests": len(photos),
        "concurrency": concurrency,
        "workers": workers,
        "images_per_s": round(len(photos) / elapsed, 1),
        "latency_ms_p50": round(latencies[len(latencies) // 2]),
        "latency_ms_p95": round(latencies[int(len(latencies) * 0.95) - 1]),
    }
    print(f"embedded stack: {figures}", flush=True)
    return figures


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--images", type=int, default=64)
    parser.add_argument("--concurrency", type=int, default=8)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--port", type=int, default=8077)
    parser.add_argument("--out", type=Path, default=OUT / "bench.json")
    args = parser.parse_args(argv)
    photos = _photos(shared_data_dir(), args.images)
    report = {
        "machine": {"cpus": os.cpu_count(), "python": platform.python_version(), "machine": platform.machine()},
        "classifier": bench_classifier(photos),
        "embedded_stack": bench_stack(photos, args.port, args.concurrency, args.workers),
    }
    from bench import faces  # the face pipeline: cold start, first frame to CSV

    report["faces"] = faces.run(shared_data_dir())
    save_report(args.out, report)
    return 0


if __name__ == "__main__":
    sys.exit(main())
