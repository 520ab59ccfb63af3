"""Workers forked from the zygote, against moto's server: each answers requests, is a process of
its own with its own id, log and session, stops on SIGTERM, and dies with the zygote.

Processes are involved (moto's server, the zygote, its workers), hence ``slow``. The waits are
bounds, never assertions of speed.
"""

from __future__ import annotations

import json
import os
import signal
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import boto3
import pytest

from iraas.aws import local_credentials, local_credentials_env
from iraas.config import REPO_ROOT, TEMPLATE
from iraas.images.jobs import ImageRequest, input_key, new_id
from iraas.images.settings import ImageSettings, load_image_settings, settings_env
from iraas.local.motoserver import MotoServer
from iraas.local.provision import provision
from iraas.local.stackfile import write_stack_file
from iraas.local.template import load_template
from iraas.local.zygote import ForkedWorker, Zygote
from iraas.scaling.status import heartbeat_key
from tests.support.waiting import wait_until

pytestmark = pytest.mark.slow


@dataclass
class Forking:
    home: Path
    settings: ImageSettings
    zygote: Zygote
    s3: object
    sqs: object

    def spawn(self, worker_id: str) -> ForkedWorker:
        worker = self.zygote.spawn(worker_id, self.ready(worker_id), self.home / "logs" / f"{worker_id}.log")
        wait_until(lambda: self.ready(worker_id).exists(), 60, f"{worker_id} ready")
        return worker

    def ready(self, worker_id: str) -> Path:
        return self.home / "ready" / worker_id


@pytest.fixture
def forking(tmp_path: Path, model_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Forking]:
    home = tmp_path / "home"
    (home / "ready").mkdir(parents=True)
    (home / "logs").mkdir()
    for name, value in local_credentials_env().items():
        monkeypatch.setenv(name, value)
    with MotoServer(log_path=home / "logs" / "moto.log") as moto:
        resources = provision(load_template(TEMPLATE), endpoint_url=moto.url, region="us-east-1")
        write_stack_file(home / "stack.json", moto.url, "us-east-1", resources)
        settings = load_image_settings({**os.environ, "IRAAS_HOME": str(home)})
        env = {
            **os.environ, **settings_env(settings), "IRAAS_ORT_THREADS": "1", "IRAAS_WORKER_LONG_POLL_S": "1",
            "IRAAS_WORKER_ANNOUNCE": "1",  # as `iraas up` runs its workers: answers on the response queue
        }
        zygote = Zygote(home / "ready" / "zygote", home / "logs" / "zygote.log")
        zygote.start(env, REPO_ROOT)
        clients = {
            service: boto3.client(service, endpoint_url=moto.url, region_name="us-east-1", **local_credentials())
            for service in ("s3", "sqs")
        }
        try:
            yield Forking(home, settings, zygote, clients["s3"], clients["sqs"])
        finally:
            zygote.stop(time.monotonic() + 10)


def answers(forking: Forking, data: bytes, name: str, timeout_s: float = 60) -> dict:
    """Queue a request as the web tier does; the answer announced on the response queue."""
    settings, s3, sqs = forking.settings, forking.s3, forking.sqs
    request_id = new_id()
    request = ImageRequest(request_id, name, settings.image_input_bucket, input_key("anonymous", request_id, name))
    s3.put_object(Bucket=request.bucket, Key=request.key, Body=data)  # type: ignore[attr-defined]
    sqs.send_message(QueueUrl=settings.request_queue_url, MessageBody=request.to_message())  # type: ignore[attr-defined]
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        messages = sqs.receive_message(  # type: ignore[attr-defined]
            QueueUrl=settings.response_queue_url, MaxNumberOfMessages=10, WaitTimeSeconds=1
        ).get("Messages", [])
        for message in messages:
            body = json.loads(message["Body"])
            if body.get("id") == request_id:
                return body
    raise AssertionError(f"no answer to {name} within {timeout_s} s")


def test_a_forked_worker_answers_a_request_as_a_process_of_its_own(forking: Forking, photo) -> None:
    worker = forking.spawn("local-1")

    answer = answers(forking, photo.path.read_bytes(), photo.path.name)

    assert answer["status"] == "done" and answer["label"] == "tench"
    assert worker.pid not in (os.getpid(), forking.zygote.process.pid)  # type: ignore[union-attr]
    assert os.getsid(worker.pid) == worker.pid  # a session of its own, like every child of iraas up
    assert forking.ready("local-1").read_text() == "local-1"  # its IRAAS_WORKER_ID...
    beat = forking.s3.get_object(  # type: ignore[attr-defined]
        Bucket=forking.settings.image_output_bucket, Key=heartbeat_key("local-1")
    )
    assert json.loads(beat["Body"].read())["worker_id"] == "local-1"  # ...is what it reports as
    assert "worker local-1 ready" in (forking.home / "logs" / "local-1.log").read_text()  # its own log

    worker.terminate()  # SIGTERM: an idle worker stops at once
    worker.wait_or_kill(time.monotonic() + 30)
    assert not worker.alive
    assert "worker local-1 stopped" in (forking.home / "logs" / "local-1.log").read_text()


def test_a_crashed_worker_takes_nothing_else_with_it(forking: Forking, photo) -> None:
    first, second = forking.spawn("local-1"), forking.spawn("local-2")

    os.kill(first.pid, signal.SIGKILL)
    wait_until(lambda: not first.alive, 30, "the killed worker gone")

    assert second.alive and forking.zygote.alive
    third = forking.spawn("local-3")  # the zygote still forks
    assert answers(forking, photo.path.read_bytes(), photo.path.name)["status"] == "done"
    assert [w.alive for w in (first, second, third)] == [False, True, True]


def test_workers_die_with_the_zygote(forking: Forking) -> None:
    workers = [forking.spawn("local-1"), forking.spawn("local-2")]

    forking.zygote.process.kill()  # type: ignore[union-attr] - as when `iraas up` is killed
    forking.zygote.process.wait()  # type: ignore[union-attr]

    for worker in workers:  # each gets SIGTERM from the kernel and, idle, stops
        wait_until(lambda w=worker: not w.alive, 30, f"{worker.name} gone")
    assert not forking.zygote.alive
