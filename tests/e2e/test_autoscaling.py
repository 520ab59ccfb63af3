"""End to end: the embedded stack's scaler follows a burst up and down, and survives killed workers."""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import subprocess
import sys
import threading
import time
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest
import requests

pytestmark = pytest.mark.slow
REPO_ROOT = Path(__file__).resolve().parents[2]
MAX_WORKERS = 6


class RunningStack:
    """`iraas up` in the background, its output collected line by line."""

    def __init__(self, home: Path) -> None:
        with socket.socket() as sock:
            sock.bind(("127.0.0.1", 0))
            self.port = sock.getsockname()[1]
        self.url = f"http://127.0.0.1:{self.port}"
        self.home = home
        env = {
            **os.environ,
            "IRAAS_HOME": str(home),
            "PYTHONUNBUFFERED": "1",
            "IRAAS_MAX_WORKERS": str(MAX_WORKERS),
            "IRAAS_SCALER_TICK_S": "1",
            # A killed worker's batch comes back after 5 s instead of 60.
            "IRAAS_WORKER_VISIBILITY_S": "5",
        }
        self.process = subprocess.Popen(
            [sys.executable, "-m", "iraas.cli", "up", "--port", str(self.port)],
            cwd=REPO_ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
        )
        self.lines: list[str] = []
        self.ready = threading.Event()
        threading.Thread(target=self._read, daemon=True).start()
        if not self.ready.wait(180):
            raise AssertionError("not ready:\n" + "".join(self.lines))

    def _read(self) -> None:
        for line in self.process.stdout:
            self.lines.append(line)
            if "ready on" in line:
                self.ready.set()

    def stats(self) -> dict:
        return requests.get(f"{self.url}/v1/stats", timeout=10).json()

    def submit(self, photos: list[Path]) -> list[str]:
        def send(path: Path) -> str:
            response = requests.post(
                f"{self.url}/v1/images?wait=0&name={path.name}",
                data=path.read_bytes(),
                headers={"Content-Type": "image/jpeg"},
                timeout=60,
            )
            assert response.status_code == 202, response.text
            return response.json()["id"]

        with ThreadPoolExecutor(max_workers=len(photos)) as pool:
            return list(pool.map(send, photos))

    def wait_for(self, condition, timeout_s: float, what: str, every_s: float = 0.5):
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            value = condition()
            if value:
                return value
            time.sleep(every_s)
        raise AssertionError(f"{what} did not happen within {timeout_s} s; stats: {self.stats()}")

    def all_answered(self, ids: list[str]) -> bool:
        return all(requests.get(f"{self.url}/v1/images/{i}", timeout=10).status_code == 200 for i in ids)

    def announcements(self) -> Counter:
        """How often `iraas up` printed each request (one line per response-queue message)."""
        return Counter(line.split()[0] for line in self.lines if line.startswith("  "))

    def worker_pids(self) -> list[int]:
        """The local workers: each titled `iraas worker local-N (<home>)` (iraas/proctitle.py), forked
        from the zygote or, should the stack have fallen back to those, started as `iraas worker`
        processes (named by their command line until their title is set)."""

        def pgrep(*args: str) -> list[int]:
            return [int(pid) for pid in subprocess.run(["pgrep", *args], capture_output=True, text=True).stdout.split()]

        titled = pgrep("-f", f"^iraas worker local-[0-9]+ [(]{self.home}[)]")
        return sorted({*titled, *pgrep("-f", f"ready-file {self.home}/ready/local-")})

    def stop(self) -> None:
        self.process.send_signal(signal.SIGINT)
        try:
            self.process.wait(timeout=15)
        except subprocess.TimeoutExpired:
            self.process.kill()


@pytest.fixture
def running_stack(tmp_path, model_path):
    stack = RunningStack(tmp_path / "home")
    yield stack
    stack.stop()


def test_a_burst_of_60_scales_to_the_maximum_and_back_to_zero(running_stack, imagenet_sample):
    stack = running_stack
    photos = [p.path for p in imagenet_sample[:60]]
    assert stack.stats()["workers"]["running"] == 0

    sent = time.monotonic()
    ids = stack.submit(photos)
    stack.wait_for(lambda: stack.stats()["workers"]["running"] == MAX_WORKERS, 10, "6 workers")
    assert time.monotonic() - sent <= 10.5

    stack.wait_for(lambda: stack.all_answered(ids), 120, "all 60 answered")
    stack.wait_for(lambda: sum(stack.stats()["queue"].values()) == 0, 30, "an empty queue")
    drained = time.monotonic()
    stack.wait_for(lambda: stack.stats()["workers"]["running"] == 0, 30, "scale-in to zero")
    assert time.monotonic() - drained <= 30.5

    time.sleep(1.5)  # the last announcements reach the output
    announced = stack.announcements()
    assert {i[:8] for i in ids} <= set(announced) and max(announced.values()) == 1


def test_killing_workers_during_scale_in_loses_no_request_and_answers_none_twice(running_stack, imagenet_sample):
    stack = running_stack
    first = stack.submit([p.path for p in imagenet_sample[60:100]])
    stack.wait_for(lambda: stack.all_answered(first), 120, "the first burst answered")
    # Scale-in starts: the queue is empty and the scaler lowers its target.
    stack.wait_for(
        lambda: (lambda w: w["desired"] < w["running"])(stack.stats()["workers"]), 30, "scale-in"
    )

    # Watched while it is sent, and large enough that its work stays in flight for a while: a
    # burst of 30 sent first and watched after was sometimes answered between two looks.
    sending = ThreadPoolExecutor(max_workers=1)
    second_sent = sending.submit(stack.submit, [p.path for p in imagenet_sample[100:220]])
    seen: list[int] = []

    def two_workers_with_work_in_flight() -> bool:
        # The pids that satisfied the condition: a worker may stop (scale-in) right after it.
        seen[:] = stack.worker_pids()
        return len(seen) >= 2 and stack.stats()["queue"]["in_flight"] > 0

    stack.wait_for(two_workers_with_work_in_flight, 20, "work in flight", every_s=0.05)
    # Scale-in may stop a worker at any moment: SIGKILL the first one still running (a crash in
    # the middle of a batch), then SIGTERM another (a graceful stop: it finishes its batch first).
    killed = None
    for pid in seen:
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGKILL)
            killed = pid
            break
    assert killed is not None, "every worker had stopped before one could be killed"
    for pid in seen:
        if pid != killed:
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGTERM)
            break

    ids = first + second_sent.result(timeout=120)
    sending.shutdown()
    stack.wait_for(lambda: stack.all_answered(ids), 120, "every request answered")
    time.sleep(1.5)
    announced = stack.announcements()
    assert max(announced[i[:8]] for i in ids) == 1  # none answered twice
