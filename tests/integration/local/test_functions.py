"""iraas/local/functions.py: a function's local runners follow its event queue, against moto's server: forked warm from the
zygote as events queue up, never past the cap, back to one when idle; a killed runner or zygote is
replaced; a stop leaves no process.

The handler is a small file written here (the face handler's models are not needed to test the
pool), which records each event it gets and the pid that got it. Processes are involved, hence
``slow``; the waits are bounds, never assertions of speed.
"""

from __future__ import annotations

import functools
import json
import os
import signal
import time
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import boto3
import pytest

from iraas.aws import local_credentials, local_credentials_env
from iraas.config import REPO_ROOT
from iraas.local.functions import FunctionPool
from iraas.local.motoserver import MotoServer
from iraas.local.runners import LocalFunction
from iraas.queues import queue_depth
from tests.support.waiting import wait_until

pytestmark = pytest.mark.slow

HANDLER = """
import os, pathlib, time

def lambda_handler(event, context):
    key = event["Records"][0]["s3"]["object"]["key"]
    time.sleep(0.4)  # a video's worth of work, so that events queue up
    with pathlib.Path({calls!r}).open("a") as f:
        f.write(f"{{key}} {{os.getpid()}}\\n")
"""


@dataclass
class Pooled:
    pool: FunctionPool
    sqs: object
    queue_url: str
    calls: Path
    first_url: str  # the queue whose events go first, for a pool that yields to it

    def send(self, keys: list[str], queue_url: str | None = None) -> None:
        for start in range(0, len(keys), 10):
            self.sqs.send_message_batch(  # type: ignore[attr-defined]
                QueueUrl=queue_url or self.queue_url,
                Entries=[{"Id": str(n), "MessageBody": _s3_event(k)} for n, k in enumerate(keys[start:start + 10])],
            )

    def handled(self) -> list[tuple[str, int]]:
        if not self.calls.exists():
            return []
        return [(k, int(p)) for k, p in (line.rsplit(" ", 1) for line in self.calls.read_text().splitlines())]

    def ready_runners(self) -> list:
        return [r for r in self.pool.runners if r.ready_ms is not None and r.process.alive and not r.retiring]


def _s3_event(key: str) -> str:
    return json.dumps({"Records": [{"eventSource": "aws:s3", "s3": {"bucket": {"name": "in"}, "object": {"key": key}}}]})


@pytest.fixture
def pooled(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, request: pytest.FixtureRequest) -> Iterator[Pooled]:
    """A pool of runners on a queue of its own; with the parameter True, second in line to ``first_url``."""
    yields = getattr(request, "param", False)
    home = tmp_path / "home"
    (home / "ready").mkdir(parents=True)
    (home / "logs").mkdir()
    calls, handler = tmp_path / "calls.txt", tmp_path / "handler.py"
    handler.write_text(HANDLER.format(calls=str(calls)))
    with MotoServer(log_path=home / "logs" / "moto.log") as moto:
        env = {
            **os.environ, **local_credentials_env(), "IRAAS_HOME": str(home), "IRAAS_ENDPOINT_URL": moto.url,
            "IRAAS_REGION": "us-east-1",
        }
        for name, value in env.items():
            monkeypatch.setenv(name, value)
        sqs = boto3.client("sqs", endpoint_url=moto.url, region_name="us-east-1", **local_credentials())
        queue_url = sqs.create_queue(QueueName="resize-events", Attributes={"VisibilityTimeout": "30"})["QueueUrl"]
        first_url = sqs.create_queue(QueueName="first-frames")["QueueUrl"]
        function = LocalFunction("Resize", f"{handler}:lambda_handler", queue_url, timeout_s=30)
        pool = FunctionPool(
            function, home, env, REPO_ROOT, functools.partial(queue_depth, sqs, queue_url), cap=3, idle_s=1.0, niceness=10,
            yields_to=functools.partial(queue_depth, sqs, first_url) if yields else None,
        )
        pool.start()
        try:
            yield Pooled(pool, sqs, queue_url, calls, first_url)
        finally:
            pool.terminate()
            pool.wait_or_kill(time.monotonic() + 10)


def test_runners_follow_the_backlog_up_to_the_cap_and_back_to_one_warm(pooled: Pooled) -> None:
    pool = pooled.pool
    wait_until(lambda: len(pooled.ready_runners()) == 1, 60, "one warm runner")
    first = pool.runners[0]
    assert first.forked and os.getpriority(os.PRIO_PROCESS, first.process.pid) == 10  # type: ignore[attr-defined]
    keys = [f"video-{n}.mp4" for n in range(12)]
    most = 0

    pooled.send(keys)
    deadline = time.monotonic() + 60
    while len(pooled.handled()) < len(keys):
        assert time.monotonic() < deadline, f"handled {len(pooled.handled())} of {len(keys)} within 60 s"
        most = max(most, len([r for r in pool.runners if not r.retiring]))
        time.sleep(0.05)

    handled = pooled.handled()
    assert Counter(k for k, _ in handled) == Counter(keys)  # each event once
    assert len({pid for _, pid in handled}) == 3 and most == 3  # up to the cap, never past it
    assert all(r.forked for r in pool.started)
    print("runner start to ready (forked):", [round(r.ready_ms) for r in pool.started])
    wait_until(lambda: len(pool.runners) == 1, 30, "back to one runner once idle")
    assert pool.runners[0] is first  # the oldest stays warm
    assert not any((pool.home / "ready").glob("Resize-[12]"))  # the stopped runners' ready files are gone


def test_a_killed_runner_and_a_killed_zygote_are_replaced(pooled: Pooled) -> None:
    pool = pooled.pool
    wait_until(lambda: len(pooled.ready_runners()) == 1, 60, "one warm runner")
    killed = pool.runners[0].process

    os.kill(killed.pid, signal.SIGKILL)  # type: ignore[attr-defined]
    wait_until(lambda: pooled.ready_runners() and pooled.ready_runners()[0].process is not killed, 30, "a new runner")
    assert zygote_pid(pool) is not None
    old_zygote = zygote_pid(pool)
    os.kill(old_zygote, signal.SIGKILL)  # its runners get SIGTERM from the kernel and stop
    wait_until(lambda: zygote_pid(pool) not in (None, old_zygote) and pool.zygote.ready  # type: ignore[union-attr]
               and pooled.ready_runners(), 60, "a new zygote and a runner forked from it")
    pooled.send(["after.mp4"])

    wait_until(lambda: [k for k, _ in pooled.handled()] == ["after.mp4"], 30, "the event handled")
    assert pool.failure is None


def test_a_stop_leaves_no_process(pooled: Pooled) -> None:
    pool = pooled.pool
    wait_until(lambda: len(pooled.ready_runners()) == 1, 60, "one warm runner")
    pooled.send([f"v{n}.mp4" for n in range(9)])
    wait_until(lambda: len(pool.runners) == 3, 30, "three runners")
    runners = [r.process for r in pool.runners]
    zygote = pool.zygote.process  # type: ignore[union-attr]

    pool.terminate()
    pool.wait_or_kill(time.monotonic() + 6)

    assert not any(r.alive for r in runners) and zygote is not None and zygote.poll() is not None
    assert len(pooled.handled()) < 9  # each runner finished the event it was on, and took no other


def zygote_pid(pool: FunctionPool) -> int | None:
    process = pool.zygote.process if pool.zygote is not None else None
    return process.pid if process is not None and process.poll() is None else None


@pytest.mark.parametrize("pooled", [True], indirect=True, ids=["second in line"])
def test_a_pool_second_in_line_runs_nothing_while_the_other_queue_has_events(pooled: Pooled) -> None:
    """A lecture's segments wait while new videos' first frames do (iraas up's segment pool): once it
    has events of its own, its runners finish the event they are on and stop, none starts, not even a
    warm one; once the other queue is empty (and has stayed so a moment), it takes its events again."""
    pool = pooled.pool
    wait_until(lambda: len(pooled.ready_runners()) == 1, 60, "one warm runner")
    pooled.send(["a first frame"], pooled.first_url)  # nobody takes it here: it stays visible
    pooled.send([f"segment-{n}" for n in range(4)])
    wait_until(lambda: not pool.runners, 30, "the warm runner retired")
    taken = len(pooled.handled())  # what the warm runner took before the pool's next tick (0.4 s each)
    time.sleep(3.0)  # three of the pool's ticks
    assert not pool.runners and taken < 4 and len(pooled.handled()) == taken

    pooled.sqs.purge_queue(QueueUrl=pooled.first_url)  # type: ignore[attr-defined]
    wait_until(lambda: len(pooled.handled()) == 4, 60, "the segments handled")
    assert sorted(k for k, _ in pooled.handled()) == [f"segment-{n}" for n in range(4)]
