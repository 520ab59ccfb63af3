"""CPU per call of the embedded AWS endpoint: plain ``moto.server`` against ``iraas.local.moto_app``,
and ``iraas.local.moto_app`` keeping its state (``--state``, what ``iraas up`` runs).

``python -m bench.moto_calls`` starts the endpoint each way, one after the other, drives the same
mix of calls through each (what the web tier and the workers do: SQS batches against a queue with
a backlog and a redrive policy, queue depth, S3 objects of ~100 KB) and reads the server process's
CPU time (utime + stime from ``/proc/<pid>/stat``, all its threads) before and after, and its own
CPU time as the caller (what boto3 spends per call on the client's side: building, signing and
sending the request, parsing the answer). It writes ``bench/out/moto_calls.json``: CPU ms per call
for the mix and per group of calls, both ways, and the ratio.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from collections.abc import Callable
from typing import Any

from bench import OUT, save_report
from iraas.aws import local_credentials_env
from iraas.config import TEMPLATE
from iraas.local.motoserver import free_port

SERVERS = {"plain": "moto.server", "patched": "iraas.local.moto_app", "durable": "iraas.local.moto_app --state"}
REGION = "us-east-1"
BODY = b"x" * 100_000  # an image-sized object


def cpu_ms(pid: int) -> float:
    """User + system CPU time of a process (all its threads), in ms."""
    with open(f"/proc/{pid}/stat") as stat:
        fields = stat.read().rsplit(")", 1)[1].split()
    # After the ")" closing the command name, field 3 is the state; utime and stime are 14 and 15.
    utime, stime = int(fields[11]), int(fields[12])
    return (utime + stime) * 1000.0 / os.sysconf("SC_CLK_TCK")


def start_server(server: str, state: str) -> tuple[subprocess.Popen[bytes], str]:
    port = free_port()
    env = {**os.environ, **local_credentials_env(), "MOTO_PORT": str(port)}
    log = tempfile.TemporaryFile()  # noqa: SIM115 - the server's lifetime
    module, *options = server.split()
    if options:  # --state: kept in a scratch folder, provisioned from the template
        options += [state, "--template", str(TEMPLATE), "--region", REGION]
    process = subprocess.Popen(
        [sys.executable, "-m", module, "-H", "127.0.0.1", "-p", str(port), *options],
        stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT, env=env,
    )
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        if process.poll() is not None:
            log.seek(0)
            sys.exit(f"{server} exited: {log.read().decode(errors='replace')[-2000:]}")
        try:
            with urllib.request.urlopen(f"{url}/moto-api/config", timeout=1):
                return process, url
        except (urllib.error.URLError, ConnectionError, TimeoutError):
            time.sleep(0.1)
    process.kill()
    sys.exit(f"{server} did not answer on {url}")


class Workload:
    """The queues, bucket and backlog of a busy embedded stack, and the calls made against them."""

    def __init__(self, url: str, backlog: int, durable: bool = False) -> None:
        import boto3
        from botocore.config import Config

        creds = local_credentials_env()
        kwargs: dict[str, Any] = {
            "endpoint_url": url,
            "region_name": REGION,
            "aws_access_key_id": creds["AWS_ACCESS_KEY_ID"],
            "aws_secret_access_key": creds["AWS_SECRET_ACCESS_KEY"],
            "config": Config(retries={"max_attempts": 1}),
        }
        self.sqs = boto3.client("sqs", **kwargs)
        self.s3 = boto3.client("s3", **kwargs)
        if durable:  # only the template's resources are kept: use its bucket and request queue
            from iraas.local.provision import provision
            from iraas.local.template import load_template

            session = boto3.Session(region_name=REGION, aws_access_key_id=creds["AWS_ACCESS_KEY_ID"],
                                    aws_secret_access_key=creds["AWS_SECRET_ACCESS_KEY"])
            resources = provision(load_template(TEMPLATE), session=session, endpoint_url=url, region=REGION)
            self.bucket, self.queue = resources["ImageInputBucket"], resources["RequestQueue"]
        else:
            self.bucket = "bench"
            self.s3.create_bucket(Bucket=self.bucket)
            dlq = self.sqs.create_queue(QueueName="bench-dlq")["QueueUrl"]
            dlq_arn = self.sqs.get_queue_attributes(QueueUrl=dlq, AttributeNames=["QueueArn"])
            redrive = json.dumps({"deadLetterTargetArn": dlq_arn["Attributes"]["QueueArn"], "maxReceiveCount": "3"})
            self.queue = self.sqs.create_queue(
                QueueName="bench-requests",
                Attributes={"VisibilityTimeout": "60", "MessageRetentionPeriod": "86400", "RedrivePolicy": redrive},
            )["QueueUrl"]
        self.sent = 0
        for _ in range(backlog // 10):
            self.send_batch()
        for _ in range(2):  # some requests in flight, as while workers hold batches
            self.sqs.receive_message(QueueUrl=self.queue, MaxNumberOfMessages=10, WaitTimeSeconds=0)
        self.s3.put_object(Bucket=self.bucket, Key="inputs/0/photo.jpg", Body=BODY)

    def send_batch(self) -> None:
        entries = []
        for _ in range(10):
            self.sent += 1
            entries.append({"Id": str(self.sent), "MessageBody": json.dumps({"id": f"{self.sent:08d}", "key": "inputs/x"})})
        self.sqs.send_message_batch(QueueUrl=self.queue, Entries=entries)

    def receive_and_delete(self) -> None:
        messages = self.sqs.receive_message(
            QueueUrl=self.queue, MaxNumberOfMessages=10, WaitTimeSeconds=0, AttributeNames=["All"]
        ).get("Messages", [])
        if messages:
            entries = [{"Id": str(i), "ReceiptHandle": m["ReceiptHandle"]} for i, m in enumerate(messages)]
            self.sqs.delete_message_batch(QueueUrl=self.queue, Entries=entries)

    def depth(self) -> None:
        self.sqs.get_queue_attributes(
            QueueUrl=self.queue,
            AttributeNames=["ApproximateNumberOfMessages", "ApproximateNumberOfMessagesNotVisible"],
        )

    def put(self) -> None:
        self.s3.put_object(Bucket=self.bucket, Key="inputs/0/photo.jpg", Body=BODY)

    def get(self) -> None:
        self.s3.get_object(Bucket=self.bucket, Key="inputs/0/photo.jpg")["Body"].read()

    def mix(self) -> int:
        """One round of the mix; returns the number of calls made."""
        self.send_batch()
        self.receive_and_delete()  # 2 calls
        self.depth()
        self.put()
        self.get()
        return 6

    def groups(self) -> dict[str, Callable[[], int]]:
        def sqs_cycle() -> int:
            self.send_batch()
            self.receive_and_delete()
            return 3

        def s3_pair() -> int:
            self.put()
            self.get()
            return 2

        def depth() -> int:
            self.depth()
            return 1

        return {"mix": self.mix, "sqs_send_receive_delete": sqs_cycle, "sqs_depth": depth, "s3_put_get": s3_pair}


def measure(server: str, rounds: int, backlog: int) -> dict[str, Any]:
    with tempfile.TemporaryDirectory() as state:
        return _measure(server, rounds, backlog, state)


def _measure(server: str, rounds: int, backlog: int, state: str) -> dict[str, Any]:
    process, url = start_server(server, state)
    try:
        work = Workload(url, backlog, durable="--state" in server)
        for _ in range(5):  # warm up: every backend app built, every code path imported
            work.mix()
        result: dict[str, Any] = {}
        for name, step in work.groups().items():
            before, started, calls = cpu_ms(process.pid), time.monotonic(), 0
            client_before = time.process_time()
            for _ in range(rounds):
                calls += step()
            elapsed, used = time.monotonic() - started, cpu_ms(process.pid) - before
            client = (time.process_time() - client_before) * 1000
            result[name] = {
                "calls": calls,
                "server_cpu_ms_per_call": round(used / calls, 3),
                "client_cpu_ms_per_call": round(client / calls, 3),
                "wall_ms_per_call": round(elapsed * 1000 / calls, 3),
            }
            print(f"  {server:30} {name:24} {used / calls:6.3f} CPU ms/call  (boto3 client {client / calls:.3f}; "
                  f"{calls} calls)")
        return result
    finally:
        process.terminate()
        try:
            process.wait(10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=200, help="rounds of each group of calls")
    parser.add_argument("--backlog", type=int, default=100, help="messages waiting in the queue")
    args = parser.parse_args(argv)
    results = {label: measure(module, args.rounds, args.backlog) for label, module in SERVERS.items()}
    def ratios(over: str, under: str) -> dict[str, float]:
        return {
            name: round(results[over][name]["server_cpu_ms_per_call"]
                        / max(results[under][name]["server_cpu_ms_per_call"], 1e-9), 2)
            for name in results[over]
        }

    print(f"  plain / patched CPU per call: {ratios('plain', 'patched')}")
    print(f"  durable / patched CPU per call (the cost of keeping the state): {ratios('durable', 'patched')}")
    save_report(OUT / "moto_calls.json", {
        "what": "CPU ms of the endpoint process per call, plain moto.server vs iraas.local.moto_app",
        "rounds": args.rounds,
        "backlog": args.backlog,
        "cpus": os.cpu_count(),
        "servers": SERVERS,
        "results": results,
        "plain_over_patched": ratios("plain", "patched"),
        "durable_over_patched": ratios("durable", "patched"),
    })


if __name__ == "__main__":
    main()
