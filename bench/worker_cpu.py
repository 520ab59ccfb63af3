"""A worker's CPU per answered image against ``iraas classify``'s: ``python -m bench.worker_cpu``.

What an AWS user pays for on the app tier is the worker's CPU per image; the model's share of it
is what ``iraas classify`` spends on the same photos. In one run, on this machine:

- ``iraas up --workers 1`` (one fixed worker, configured as on AWS: ``IRAAS_WORKER_ANNOUNCE=0``,
  so it sends nothing to the response queue), warmed up with 100 requests, then ``--images``
  course-style requests (multipart ``myfile`` to ``POST /``, each waiting for its answer) in waves
  of 100, each wave sent once the last is answered. The course endpoint, not ``wait=0``: it is the
  course's workload, and the heavier one for the worker (it also replies to the waiting web
  process). The worker process's CPU (utime + stime, ``/proc/<pid>/stat``) before and after, per
  answered image; the endpoint, the web tier and the load generator are not counted.
- ``iraas classify`` (``python -m iraas.cli classify``) on the same files, as a subprocess: its CPU
  (``os.wait4``) less that of a run on the first 8 files (the interpreter's start, the model's load
  and warm-up), per image over the rest.
- The worker's AWS calls per image, by operation, on the AWS configuration: the same photos
  accepted as the web tier accepts them (``ImageService.accept``, each waiting for its answer), then
  drained by a ``Worker`` against in-process moto, every call on its own clients counted with
  botocore's event hooks.
- What one such call costs the client: boto3 configured as IRaaS configures it (``iraas.aws``),
  against the embedded endpoint in a process of its own, this process's CPU per call for a
  result's conditional PUT, a photo's GET and an SQS receive. With the count, the least CPU per
  image a worker that makes those calls with boto3 can spend beyond the model: the floor the
  ratio cannot go under (``boto3_floor_ratio``).

Medians of ``--rounds`` rounds, each round's worker and ``iraas classify`` figures taken one after
the other; the target (issue 21) is a ratio of at most 1.3. Writes ``bench/out/worker_cpu.json``.
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time
from collections import Counter
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from bench import OUT, SCRATCH, save_report, scratch
from bench.run import cpu_model
from bench.service import _children, course_request, photos, process_role, process_tree, start_stack
from iraas.config import REPO_ROOT

TARGET_RATIO = 1.3  # a worker's CPU per answered image, at most this times `iraas classify`'s
WAVE = 100
FLOOR_CALLS = 300  # calls of each kind timed for boto3's CPU per call
STARTUP_FILES = 8  # the `iraas classify` run whose CPU is its start, not its images
_TICKS = os.sysconf("SC_CLK_TCK")


def own_cpu_s(pid: int) -> float:
    """User + system CPU seconds of ``pid`` itself (all its threads)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / _TICKS  # utime stime


def worker_pid(root: int) -> int:
    """The one image worker of ``iraas up`` (pid ``root``): a "workers" process with no child (the
    zygote's forked child, or a worker started from a fresh interpreter; the zygote has children)."""
    found = [pid for pid in process_tree(root) if process_role(pid, root) == "workers" and not _children(pid)]
    if len(found) != 1:
        raise RuntimeError(f"expected one worker process under pid {root}, found {found}")
    return found[0]


def worker_round(url: str, pid: int, paths: list[Path]) -> dict:
    """``paths`` as course requests in waves of ``WAVE``; the worker's CPU ms per answered image."""
    answered = errors = 0
    before = own_cpu_s(pid)
    started = time.perf_counter()
    for start in range(0, len(paths), WAVE):
        wave = paths[start : start + WAVE]
        with ThreadPoolExecutor(max_workers=len(wave)) as pool:
            answers = list(pool.map(lambda p: course_request(url, p)[1], wave))
        answered += sum(a is not None and ":" in a for a in answers)
        errors += sum(a is None for a in answers)
    took = time.perf_counter() - started
    cpu = own_cpu_s(pid) - before
    return {"answered": answered, "errors": errors, "seconds": round(took, 2),
            "cpu_ms_per_image": round(1000 * cpu / max(answered, 1), 2)}


def classify_cpu_s(paths: list[Path]) -> float:
    """CPU seconds of one ``iraas classify`` run on ``paths`` (the process and its threads)."""
    with tempfile.TemporaryFile() as errors:
        process = subprocess.Popen(
            [sys.executable, "-m", "iraas.cli", "classify", *map(str, paths)],
            cwd=REPO_ROOT, stdout=subprocess.DEVNULL, stderr=errors,
        )
        _, status, usage = os.wait4(process.pid, 0)
        process.returncode = os.waitstatus_to_exitcode(status)
        if process.returncode != 0:
            errors.seek(0)
            raise RuntimeError(f"iraas classify failed ({process.returncode}): {errors.read().decode()[-500:]}")
    return usage.ru_utime + usage.ru_stime


def classify_round(paths: list[Path]) -> dict:
    start = classify_cpu_s(paths[:STARTUP_FILES])
    whole = classify_cpu_s(paths)
    return {"cpu_ms_per_image": round(1000 * (whole - start) / (len(paths) - STARTUP_FILES), 2),
            "startup_cpu_ms": round(1000 * start, 1)}


def worker_calls(paths: list[Path]) -> dict:
    """The worker's AWS calls per image, by operation, on in-process moto (see the module's docstring)."""
    import boto3
    import moto

    from iraas import aws
    from iraas.config import RESOURCE_ENV, TEMPLATE
    from iraas.images.model.runtime import load_classifier
    from iraas.images.service import ImageService
    from iraas.images.settings import load_image_settings
    from iraas.images.worker import Worker
    from iraas.local.provision import provision
    from iraas.local.template import load_template
    from iraas.media.uploads import parse_upload

    os.environ.update({**aws.local_credentials_env(), "AWS_DEFAULT_REGION": "us-east-1"})
    calls: Counter[str] = Counter()

    def count(event_name: str, **_: object) -> None:
        calls[event_name.removeprefix("before-call.")] += 1

    with moto.mock_aws():
        aws.reset_clients()
        resources = provision(load_template(TEMPLATE), endpoint_url=None)
        env = {**os.environ, **{var: resources[lid] for lid, var in RESOURCE_ENV.items()},
               "IRAAS_HOME": str(SCRATCH / "worker-cpu-calls-home"), "IRAAS_WORKER_LONG_POLL_S": "0"}
        env.pop("IRAAS_ENDPOINT_URL", None)
        settings = load_image_settings(env)
        service = ImageService(settings)
        for path in paths:
            upload = parse_upload(path.read_bytes(), "image/jpeg", path.name, settings.limits)
            service.accept(upload, "anonymous", expect_answer=True)
        s3, sqs = (boto3.client(name, region_name=settings.region) for name in ("s3", "sqs"))
        worker = Worker(settings, load_classifier(settings.model_dir, model=settings.model), s3=s3, sqs=sqs)
        for client in (s3, sqs):
            client.meta.events.register("before-call", count)
        answered = 0
        while (outcome := worker.poll_once(wait_s=0)).received:
            answered += outcome.answered
        service.replies.close()
    aws.reset_clients()
    return {"images": answered, "per_image": round(sum(calls.values()) / max(answered, 1), 2),
            "by_operation": {op: round(n / max(answered, 1), 3) for op, n in calls.most_common()}}


def boto3_call_cpu_ms(photo: Path, calls: int = FLOOR_CALLS) -> dict[str, float]:
    """Client CPU ms per call (``time.process_time``, this process, one thread) of the worker's
    kinds of call, on boto3 clients made by ``iraas.aws`` against a fresh embedded endpoint."""
    from types import SimpleNamespace

    from iraas import aws
    from iraas.local.motoserver import MotoServer

    body = ('{"id":"' + "0" * 32 + '","name":"photo.jpg","status":"done","label":"tabby","wnid":"n02123045",'
            '"confidence":0.5,"top5":[]}').encode()
    image = photo.read_bytes()
    with MotoServer() as server:
        aws.reset_clients()
        where = SimpleNamespace(region="us-east-1", endpoint_url=server.url)
        s3, sqs = aws.client(where, "s3"), aws.client(where, "sqs")
        s3.create_bucket(Bucket="worker-cpu-floor")
        s3.put_object(Bucket="worker-cpu-floor", Key="photo.jpg", Body=image)
        queue = sqs.create_queue(QueueName="worker-cpu-floor")["QueueUrl"]

        def per_call(call: Callable[[int], object]) -> float:
            for n in range(10):  # the connection and botocore's caches warm
                call(-1 - n)
            started = time.process_time()
            for n in range(calls):
                call(n)
            return round(1000 * (time.process_time() - started) / calls, 3)

        figures = {
            "s3.PutObject": per_call(lambda n: s3.put_object(
                Bucket="worker-cpu-floor", Key=f"results/{n}.json", Body=body, IfNoneMatch="*")),
            "s3.GetObject": per_call(lambda n: s3.get_object(Bucket="worker-cpu-floor", Key="photo.jpg")["Body"].read()),
            "sqs.ReceiveMessage": per_call(lambda n: sqs.receive_message(QueueUrl=queue, WaitTimeSeconds=0)),
        }
    aws.reset_clients()
    return figures


def boto3_floor_ms(by_operation: dict[str, float], per_call_ms: dict[str, float]) -> float:
    """CPU ms per image of the worker's calls alone: each operation's calls per image times what a
    call of its kind costs (an S3 call other than PUT as a GET, an SQS call as a receive)."""
    def cost(op: str) -> float:
        if op in per_call_ms:
            return per_call_ms[op]
        return per_call_ms["s3.GetObject"] if op.startswith("s3.") else per_call_ms["sqs.ReceiveMessage"]

    return round(sum(n * cost(op) for op, n in by_operation.items()), 2)


def run(args: argparse.Namespace) -> dict:
    paths = photos(args.images + WAVE)
    measured, warm_up = paths[: args.images], paths[args.images :]
    # The worker as on AWS: it announces nothing (iraas up's per-request lines are not needed here).
    stack = start_stack(args.port, scratch("worker-cpu-home"), ["--workers", "1"], {"IRAAS_WORKER_ANNOUNCE": "0"})
    rounds: list[dict] = []
    try:
        pid = worker_pid(stack.process.pid)
        print(f"iraas up --workers 1: the worker is pid {pid}; warming up with {len(warm_up)} requests", flush=True)
        worker_round(stack.url, pid, warm_up)
        # Each round's two figures one right after the other (the stack idle meanwhile): a shared
        # machine's CPU time per unit of work drifts over minutes, the ratio much less.
        for n in range(args.rounds):
            rounds.append({"worker": worker_round(stack.url, pid, measured)})
            print(f"round {n + 1}/{args.rounds}: worker {rounds[-1]['worker']}", flush=True)
            rounds[-1]["iraas_classify"] = classify_round(measured)
            print(f"round {n + 1}/{args.rounds}: iraas classify {rounds[-1]['iraas_classify']}", flush=True)
    finally:
        stack.stop()
    worker_ms = statistics.median(r["worker"]["cpu_ms_per_image"] for r in rounds)
    classify_ms = statistics.median(r["iraas_classify"]["cpu_ms_per_image"] for r in rounds)
    for one in rounds:
        one["ratio"] = round(one["worker"]["cpu_ms_per_image"] / one["iraas_classify"]["cpu_ms_per_image"], 2)
    print("counting the worker's AWS calls per image (in-process moto)...", flush=True)
    calls = worker_calls(measured)
    print("measuring boto3's CPU per call against the embedded endpoint...", flush=True)
    per_call = boto3_call_cpu_ms(measured[len(measured) // 2])
    floor = boto3_floor_ms(calls["by_operation"], per_call)
    report = {
        "cpu_model": cpu_model(),
        "images": args.images,
        "path": "course endpoint (POST / myfile, waiting for the answer), waves of 100",
        "worker_cpu_ms_per_image": worker_ms,
        "classify_cpu_ms_per_image": classify_ms,
        "ratio": round(worker_ms / classify_ms, 2),  # of the medians; each round's is in "rounds"
        "target_ratio": TARGET_RATIO,
        "errors": sum(r["worker"]["errors"] for r in rounds),
        "worker_aws_calls": calls,
        "boto3_cpu_ms_per_call": per_call,
        "boto3_floor_cpu_ms_per_image": floor,  # the calls alone, at those costs
        "boto3_floor_ratio": round((classify_ms + floor) / classify_ms, 2),  # the least the ratio can be
        "rounds": rounds,
    }
    print(f"worker {worker_ms} ms / iraas classify {classify_ms} ms per image: {report['ratio']}x "
          f"(target at most {TARGET_RATIO}x); worker AWS calls per image {calls['per_image']} "
          f"{calls['by_operation']}; boto3 per call {per_call} ms: the calls alone {floor} ms per image, "
          f"a floor of {report['boto3_floor_ratio']}x; {report['cpu_model']}", flush=True)
    return report


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--images", type=int, default=400)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--port", type=int, default=8077)
    parser.add_argument("--out", type=Path, default=OUT / "worker_cpu.json")
    args = parser.parse_args(argv)
    save_report(args.out, run(args))
    return 0


if __name__ == "__main__":
    sys.exit(main())
