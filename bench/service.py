"""The service under load, as the course's workload generator drives it: ``python -m bench.service``.

On a fresh ``iraas up`` (default settings, no worker running) and then warm:
- 100 concurrent course-style requests (multipart ``myfile`` to ``POST /``, 100 threads), each
  answer checked against what the classifier alone says for that photo;
- 1,000 requests sent 100 at a time (each wave waits for the last);
- AWS calls per image (requests in the endpoint's log) and CPU seconds per image by process
  (endpoint, web tier, workers, the rest of ``iraas up``);
- the classifier alone on the same photos in the same run, so throughput is a ratio.
Each figure is the median of ``--repeats`` runs after a warm-up. Writes ``bench/out/service.json``.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import statistics
import subprocess
import sys
import threading
import time
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

from bench import OUT, SCRATCH, save_report, scratch
from harness.data import shared_data_dir
from iraas.config import REPO_ROOT
from iraas.local.moto_app import REQUEST_COUNT_EVERY_S

_TICKS = os.sysconf("SC_CLK_TCK")


def photos(count: int) -> list[Path]:
    found = sorted((shared_data_dir() / "imagenet-sample" / "images").glob("*.JPEG"))[:count]
    if not found:
        sys.exit(f"no photos under {shared_data_dir()}; set IRAAS_TEST_DATA")
    return found


def expected_labels(paths: list[Path]) -> tuple[dict[str, str], float]:
    """What the classifier alone answers for each photo, and its images/s on them (batch 8)."""
    from iraas.images.model.runtime import Classification, load_classifier
    from iraas.images.settings import load_image_settings

    settings = load_image_settings({**os.environ, "IRAAS_HOME": str(SCRATCH / "no-stack"), "IRAAS_IMAGE_INPUT_BUCKET": "-",
                              "IRAAS_IMAGE_OUTPUT_BUCKET": "-", "IRAAS_REQUEST_QUEUE_URL": "-",
                              "IRAAS_RESPONSE_QUEUE_URL": "-"})
    classifier = load_classifier(settings.model_dir, model=settings.model)
    blobs = [p.read_bytes() for p in paths]
    classifier.classify_bytes(blobs[:8])  # warm-up
    runs, labels = [], {}
    for _ in range(3):
        started = time.perf_counter()
        out = []
        for i in range(0, len(blobs), 8):
            out += classifier.classify_bytes(blobs[i : i + 8])
        runs.append(len(blobs) / (time.perf_counter() - started))
    for path, result in zip(paths, out, strict=True):
        if isinstance(result, Classification):
            labels[path.name] = result.best.label
    return labels, statistics.median(runs)


# ---- the stack's processes -----------------------------------------------------------------


def _children(pid: int) -> list[int]:
    found = []
    for task in Path(f"/proc/{pid}/task").glob("*"):
        with contextlib.suppress(OSError):
            found += [int(c) for c in (task / "children").read_text().split()]
    return found


def process_tree(pid: int) -> list[int]:
    out, todo = [], [pid]
    while todo:
        current = todo.pop()
        out.append(current)
        todo += _children(current)
    return out


def process_role(pid: int, root: int) -> str:
    try:
        cmd = Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode()
    except OSError:
        return "gone"
    if pid == root:
        return "iraas up"
    # Their titles (iraas/proctitle.py), else their command lines (a process without setproctitle).
    if cmd.startswith(("iraas worker", "iraas zygote worker")):
        return "workers"
    if cmd.startswith(("iraas function", "iraas zygote")):
        return "face runners"
    if cmd.startswith("iraas endpoint") or "moto" in cmd:
        return "endpoint"
    if cmd.startswith("iraas web") or "iraas.web.server" in cmd or "gunicorn" in cmd:
        return "web"
    if "lambda_runner" in cmd:
        return "face runners"
    if "worker" in cmd or "zygote" in cmd:
        return "workers"
    return "iraas up"


def _cpu_s(pid: int) -> float:
    """User + system CPU seconds of ``pid`` and of its children that it has waited for."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return 0.0
    return sum(int(fields[i]) for i in (11, 12, 13, 14)) / _TICKS  # utime stime cutime cstime


def cpu_by_role(root: int) -> dict[str, float]:
    totals: dict[str, float] = {}
    for pid in process_tree(root):
        role = process_role(pid, root)
        own = _cpu_s(pid) - sum(_cpu_s(c) for c in _children(pid))  # children are counted themselves
        totals[role] = totals.get(role, 0.0) + max(0.0, own)
    return totals


@dataclass
class Stack:
    process: subprocess.Popen[str]
    url: str
    home: Path
    lines: list[str] = field(default_factory=list)  # what `iraas up` printed since it was ready

    def announcements(self, since: int = 0) -> list[str]:
        """The request ids (first 8 hex digits) that `iraas up` printed as answered, in order."""
        return [line.split()[0] for line in self.lines[since:] if line.startswith("  ")]

    @property
    def endpoint_requests(self) -> int:
        """Requests the endpoint has served so far (its log's latest ``served N requests`` line)."""
        time.sleep(1.5 * REQUEST_COUNT_EVERY_S)  # the line is written once a second
        try:
            text = (self.home / "logs" / "moto.log").read_text(errors="replace")
        except OSError:
            return 0
        counts = [int(line.split()[1]) for line in text.splitlines() if line.startswith("served ")]
        return counts[-1] if counts else 0

    def stop(self) -> None:
        self.process.terminate()
        try:
            self.process.wait(timeout=20)
        except subprocess.TimeoutExpired:
            self.process.kill()


def start_stack(port: int, home: Path, args: Sequence[str] = (), env: dict[str, str] | None = None) -> Stack:
    """``iraas up`` (with ``args``, e.g. ``--workers 1``, and ``env`` added to this environment) on
    ``port``, once it says it is ready."""
    home.mkdir(parents=True, exist_ok=True)
    process = subprocess.Popen(
        [sys.executable, "-m", "iraas.cli", "up", "--port", str(port), "--home", str(home), *args],
        cwd=REPO_ROOT, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, env={**os.environ, **(env or {})},
    )
    for line in process.stdout or ():
        if "ready on" in line:
            break
    else:
        raise RuntimeError("iraas up exited before it was ready")
    stack = Stack(process, f"http://127.0.0.1:{port}", home)
    # Keep reading its output (a full pipe would block it): one line per answered request.
    threading.Thread(target=lambda: stack.lines.extend(process.stdout or ()), daemon=True).start()
    return stack


# ---- load ----------------------------------------------------------------------------------


def course_request(url: str, path: Path) -> tuple[float, str | None]:
    import requests

    started = time.perf_counter()
    try:
        response = requests.post(f"{url}/", files={"myfile": (path.name, path.read_bytes(), "image/jpeg")}, timeout=60)
        answer = response.text if response.status_code == 200 else None
    except requests.RequestException:
        answer = None
    return time.perf_counter() - started, answer


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(round(q * (len(ordered) - 1))))]


def burst(stack: Stack, paths: list[Path], labels: dict[str, str], count_calls: bool = True) -> dict:
    """``len(paths)`` requests at once; total time, latency percentiles, errors, wrong answers.

    ``count_calls`` reads the endpoint's request count before and after (it pauses for the count's
    log line, outside the timed part)."""
    calls_before = stack.endpoint_requests if count_calls else 0
    cpu_before = cpu_by_role(stack.process.pid)
    started = time.perf_counter()
    with ThreadPoolExecutor(max_workers=len(paths)) as pool:
        answers = list(pool.map(lambda p: course_request(stack.url, p), paths))
    total = time.perf_counter() - started
    cpu_after = cpu_by_role(stack.process.pid)
    latencies = [latency for latency, _ in answers]
    errors = sum(answer is None for _, answer in answers)
    wrong = sum(
        answer is not None and answer != f"{p.stem}:{labels.get(p.name)}" for p, (_, answer) in zip(paths, answers, strict=True)
    )
    return {
        "requests": len(paths),
        "total_s": round(total, 2),
        "p50_s": round(percentile(latencies, 0.5), 2),
        "p90_s": round(percentile(latencies, 0.9), 2),
        "p99_s": round(percentile(latencies, 0.99), 2),
        "errors": errors,
        "wrong": wrong,
        "aws_calls_per_image": round((stack.endpoint_requests - calls_before) / len(paths), 1) if count_calls else None,
        # At least 0: a child that exits between the readings leaves its CPU with its parent's role.
        "cpu_s_per_image": {role: round(max(0.0, cpu_after.get(role, 0) - cpu_before.get(role, 0)) / len(paths), 4)
                            for role in sorted(cpu_after)},
    }


def thousand(stack: Stack, paths: list[Path], labels: dict[str, str]) -> list[dict]:
    """1,000 requests in 10 waves of 100 (photos 0-99, then 100-199, ...), each sent once the last
    is answered; one :func:`burst` report per wave."""
    return [burst(stack, paths[(i % 2) * 100 :][:100], labels, count_calls=False) for i in range(10)]


def after_scale_in(stack: Stack, path: Path, tries: int = 3, limit_s: float = 120) -> list[float]:
    """Seconds to answer one request sent just after the fleet scaled in to zero, ``tries`` times."""
    import requests

    seconds = []
    for _ in range(tries):
        course_request(stack.url, path)  # a worker runs now...
        deadline = time.monotonic() + limit_s
        while time.monotonic() < deadline:  # ...until the fleet is back to zero
            workers = requests.get(f"{stack.url}/v1/stats", timeout=10).json()["workers"]
            if workers["running"] == 0:
                break
            time.sleep(0.1)
        seconds.append(round(course_request(stack.url, path)[0], 2))
    return seconds


def run(args: argparse.Namespace) -> dict:
    paths = photos(args.images)
    labels, classifier_rate = expected_labels(paths)
    print(f"classifier alone: {classifier_rate:.0f} images/s", flush=True)
    report: dict = {"classifier_images_per_s": round(classifier_rate, 1), "cold": [], "warm": []}
    for attempt in range(args.repeats):
        stack = start_stack(args.port, scratch(f"service-home-{attempt}"))
        try:
            cold = burst(stack, paths[:100], labels)  # fresh stack: no worker running
            print(f"cold burst: {cold}", flush=True)
            report["cold"].append(cold)
            burst(stack, paths[100:200], labels)  # warm-up
            warm = burst(stack, paths[:100], labels)
            print(f"warm burst: {warm}", flush=True)
            report["warm"].append(warm)
            if attempt == 0:
                printed = len(stack.lines)
                waves = thousand(stack, paths, labels)
                elapsed = sum(w["total_s"] for w in waves)  # each wave sent once the last one is answered
                time.sleep(2)  # the last announcements
                announced = stack.announcements(printed)
                report["thousand"] = {
                    "requests": 1000,
                    "total_s": round(elapsed, 1),
                    "images_per_s": round(1000 / elapsed, 1),
                    "share_of_classifier": round(1000 / elapsed / classifier_rate, 2),
                    "errors": sum(w["errors"] for w in waves),
                    "wrong": sum(w["wrong"] for w in waves),
                    "p99_s": max(w["p99_s"] for w in waves),
                    # Each request answered once: announced once, no id twice.
                    "announced": len(announced),
                    "announced_twice": len(announced) - len(set(announced)),
                }
                print(f"1,000 in waves of 100: {report['thousand']}", flush=True)
                report["after_scale_in_s"] = after_scale_in(stack, paths[0])
                print(f"a request just after scale-in to zero: {report['after_scale_in_s']} s", flush=True)
        finally:
            stack.stop()
    for kind in ("cold", "warm"):
        runs = report[kind]
        report[f"{kind}_median"] = {key: statistics.median(r[key] for r in runs)
                                    for key in ("total_s", "p50_s", "p90_s", "p99_s", "aws_calls_per_image")}
    return report


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--images", type=int, default=200)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--port", type=int, default=8079)
    parser.add_argument("--out", type=Path, default=OUT / "service.json")
    args = parser.parse_args(argv)
    save_report(args.out, run(args))
    return 0


if __name__ == "__main__":
    sys.exit(main())
