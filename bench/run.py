"""``make bench``: every benchmark in turn, then one report, ``bench/out/bench.json``, with plots.

Each benchmark runs in its own process (a fresh interpreter, nothing warm from the one before)
and writes its own file under ``bench/out/``; this says which is running (n of m, time so far),
collects their files, and removes ``bench/out/scratch/`` (the stacks' state folders) once every
step has succeeded:

- ``classifier.json`` (``bench.classifier``): images/s per model and batch, against the matmul rate;
- ``worker.json`` (``bench.worker``): one worker end to end against the classifier alone and a naive loop;
- ``worker_cpu.json`` (``bench.worker_cpu``): one fixed worker's CPU per answered image on ``iraas up``
  against ``iraas classify``'s on the same photos, and the worker's AWS calls per image;
- ``moto_calls.json`` (``bench.moto_calls``): the embedded endpoint's CPU per call, patched or not;
- ``service.json`` (``bench.service``): 100 course-style requests cold and warm, 1,000 in waves of 100,
  AWS calls and CPU per image by process, a request just after scale-in;
- ``cpu_split.json`` (``bench.cpu_split``): with ``perf``, both cores' CPU while 1,000 requests are
  served, by process and library (the classifier's own work against moving requests);
- ``scaling.csv``/``scaling.png`` (``bench.scaling``), ``faces.json`` (``bench.faces``) and
  ``faces_at_scale.json`` (``bench.faces_at_scale``: 100 classroom uploads, first upload to last CSV);
- ``attendance.json`` (``bench.attendance``): a lecture's attendance: sampling strategies, seconds of
  lecture per second at 480p/720p/1080p, a 10-minute lecture from upload to report through ``iraas up``,
  a 60-minute one under simulated fan-out;
- ``cost.json`` (``bench.cost``, last: it reads ``worker_cpu.json`` and ``service.json``): what a million
  images cost on AWS by component, ``wait`` and ``wait=0``, beside Rekognition, from the dated price
  table ``bench/prices_us_east_1.toml``; it prints the table and writes ``docs/cost-figures.md``.

It ends by writing the benchmarks page's figures (``bench.table``: ``docs/bench-figures.md``, and
the scaling plot copied to ``docs/scaling-burst.png``), both committed, unless a step failed.

Timings on a shared 2-core machine are noisy: compare ratios from one run, not across runs.
"""

from __future__ import annotations

import argparse
import datetime
import json
import os
import platform
import shutil
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

from bench import OUT, SCRATCH, save_report, table

REPO_ROOT = Path(__file__).resolve().parent.parent

STEPS = {
    "classifier": ["bench.classifier"],
    "worker": ["bench.worker"],
    "worker_cpu": ["bench.worker_cpu"],
    "moto_calls": ["bench.moto_calls"],
    "service": ["bench.service"],
    "cpu_split": ["bench.cpu_split"],
    "scaling": ["bench.scaling"],
    "faces": ["bench.faces"],
    "faces_at_scale": ["bench.faces_at_scale"],
    "attendance": ["bench.attendance"],
    "cost": ["bench.cost"],  # last: it prices what the steps before it measured
}


def _load(name: str) -> dict | None:
    path = OUT / f"{name}.json"
    return json.loads(path.read_text()) if path.is_file() else None


def plot(report: dict, path: Path) -> None:
    """Two panels: the service's latencies per burst, and the classifier's images/s per model."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, (bursts, models) = plt.subplots(1, 2, figsize=(11, 4))
    service = report.get("service") or {}
    labels, p50, p99, total = [], [], [], []
    for kind in ("cold", "warm"):
        for n, run in enumerate(service.get(kind, [])):
            labels.append(f"{kind} {n + 1}")
            p50.append(run["p50_s"])
            p99.append(run["p99_s"])
            total.append(run["total_s"])
    x = range(len(labels))
    bursts.bar([i - 0.25 for i in x], p50, width=0.25, label="p50")
    bursts.bar(list(x), p99, width=0.25, label="p99")
    bursts.bar([i + 0.25 for i in x], total, width=0.25, label="whole burst")
    bursts.set_xticks(list(x), labels, rotation=30)
    bursts.set_ylabel("seconds")
    bursts.set_title("100 concurrent course-style requests (iraas up)")
    bursts.legend()
    classifier = (report.get("classifier") or {}).get("models", {})
    names = list(classifier)
    for offset, batch in ((-0.25, "1"), (0, "8"), (0.25, "32")):
        rates = [classifier[m].get("classify_images_per_s", {}).get(batch, 0) for m in names]
        models.bar([i + offset for i in range(len(names))], rates, width=0.25, label=f"batch {batch}")
    models.set_xticks(range(len(names)), names)
    models.set_ylabel("images/s (decode + preprocess + inference)")
    models.set_title("classifier alone, 2 cores")
    models.legend()
    fig.tight_layout()
    fig.savefig(path, dpi=100)


def cpu_model(cpuinfo: Path = Path("/proc/cpuinfo")) -> str:
    """The CPU's name as the kernel reports it (``model name``), else what Python knows."""
    try:
        for line in cpuinfo.read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine() or "unknown CPU"


def _run_module(step: str) -> int:
    return subprocess.run([sys.executable, "-m", *STEPS[step]], cwd=REPO_ROOT).returncode


def run_steps(
    steps: list[str],
    run: Callable[[str], int] = _run_module,
    say: Callable[[str], None] = lambda line: print(line, flush=True),
    clock: Callable[[], float] = time.monotonic,
) -> list[str]:
    """Run each step, saying which is running (n of m, time so far) and how it ended; the steps
    that failed."""
    failed: list[str] = []
    started = clock()
    for n, step in enumerate(steps, 1):
        say(f"== [{n}/{len(steps)}] {step} (elapsed {_minutes(clock() - started)})")
        step_started = clock()
        code = run(step)
        outcome = "ok" if code == 0 else f"FAILED (exit {code})"
        say(f"== [{n}/{len(steps)}] {step}: {outcome} in {_minutes(clock() - step_started)}")
        if code != 0:
            failed.append(step)
    say(f"== {len(steps) - len(failed)} of {len(steps)} steps ok in {_minutes(clock() - started)}")
    return failed


def _minutes(seconds: float) -> str:
    minutes, rest = divmod(round(seconds), 60)
    return f"{minutes}:{rest:02d}"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--only", help="comma-separated steps to run (default: all): " + ",".join(STEPS))
    parser.add_argument("--collect", action="store_true", help="only collect the files already written")
    args = parser.parse_args(argv)
    steps = args.only.split(",") if args.only else list(STEPS)
    unknown = [step for step in steps if step not in STEPS]
    if unknown:
        parser.error(f"unknown step {unknown[0]!r}; the steps are {', '.join(STEPS)}")
    failed = []
    if not args.collect:
        failed = run_steps(steps)
        if failed:
            print(f"failed: {', '.join(failed)}; their stacks' logs are under {SCRATCH}", flush=True)
        else:
            shutil.rmtree(SCRATCH, ignore_errors=True)  # the stacks' state folders; the results stay
    report: dict = {
        "date": datetime.datetime.now(datetime.UTC).date().isoformat(),
        "machine": {"cpus": os.cpu_count(), "cpu_model": cpu_model(), "python": platform.python_version(),
                    "machine": platform.machine()},
        # Their figures, if any, come from the files an earlier run left in bench/out/.
        "not_run": [step for step in STEPS if args.collect or step not in steps],
    }
    for step in STEPS:
        if step != "scaling":
            report[step] = _load(step)
    report["failed"] = failed
    save_report(OUT / "bench.json", report)
    plot(report, OUT / "bench.png")
    print(f"wrote {OUT / 'bench.png'}")
    print(table.render(report), end="")
    if failed:
        print("a step failed, so the benchmarks page's figures (docs/bench-figures.md) are left as they were; "
              "`python -m bench.table` writes them from this report", flush=True)
    else:
        for path in table.write(report):
            print(f"wrote {path.relative_to(REPO_ROOT)}: the benchmarks page's figures (commit it)")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
