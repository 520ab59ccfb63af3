"""``iraas up`` as a user runs it, for end-to-end tests and benches: started in the background,
waited for, talked to with boto3 and the CLI, stopped with SIGTERM (its orderly stop)."""

from __future__ import annotations

import contextlib
import json
import os
import selectors
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from iraas.config import REPO_ROOT


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def wait_for_line(process: subprocess.Popen, marker: str, timeout_s: float) -> list[str]:
    """The process's output lines up to the one containing ``marker``."""
    selector = selectors.DefaultSelector()
    selector.register(process.stdout, selectors.EVENT_READ)  # type: ignore[arg-type]
    seen: list[str] = []
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if selector.select(timeout=1):
            line = process.stdout.readline()  # type: ignore[union-attr]
            if not line:
                break
            seen.append(line)
            if marker in line:
                return seen
        elif process.poll() is not None:  # exited, while a child it started may hold its output open
            raise AssertionError(f"exited with {process.returncode} before {marker!r}:\n{''.join(seen)}")
    raise AssertionError(f"no {marker!r} within {timeout_s} s:\n{''.join(seen)}")


@dataclass
class RunningStack:
    home: Path
    env: dict[str, str]
    process: subprocess.Popen
    stack: dict[str, Any]  # .iraas/stack.json
    url: str = ""  # where the web tier listens
    startup: list[str] = field(default_factory=list)  # what it printed up to "ready on"
    printed: list[str] = field(default_factory=list)  # everything read so far (see output())

    @property
    def resources(self) -> dict[str, str]:
        return self.stack["resources"]

    def output(self) -> list[str]:
        """What ``iraas up`` has printed so far, read without blocking."""
        if not self.printed:
            self.printed.extend(self.startup)
        selector = selectors.DefaultSelector()
        selector.register(self.process.stdout, selectors.EVENT_READ)  # type: ignore[arg-type]
        while selector.select(timeout=0):
            line = self.process.stdout.readline()  # type: ignore[union-attr]
            if not line:
                break
            self.printed.append(line)
        return self.printed

    def client(self, service: str) -> Any:
        import boto3

        from iraas.aws import local_credentials

        session = boto3.session.Session(**local_credentials(), region_name=self.stack["region"])
        return session.client(service, endpoint_url=self.stack["endpoint_url"])

    def cli(self, *args: str) -> subprocess.CompletedProcess:
        """``iraas <args>`` against this stack; raises with its output if it fails."""
        result = subprocess.run(
            [sys.executable, "-m", "iraas.cli", *args], env=self.env, cwd=REPO_ROOT, capture_output=True, text=True
        )
        if result.returncode != 0:
            raise AssertionError(f"iraas {' '.join(args)} failed:\n{result.stdout}{result.stderr}")
        return result


@contextlib.contextmanager
def running_stack(
    home: Path, env: dict[str, str] | None = None, workers: int | None = 1, ready_s: float = 240,
    host: str | None = None, args: tuple[str, ...] = (),
) -> Iterator[RunningStack]:
    """``iraas up --workers N`` (``None``: scaled with the queue) with ``IRAAS_HOME=home``, ready;
    stopped at the end. ``host``: its ``--host`` (it is still spoken to on 127.0.0.1); ``args``:
    more of ``iraas up``'s options."""
    # The API key settings only as the caller gives them: a developer's shell may have its own.
    inherited = {k: v for k, v in os.environ.items() if k not in ("IRAAS_API_KEY", "IRAAS_OPEN_COURSE_ENDPOINT")}
    env = {**inherited, **(env or {}), "IRAAS_HOME": str(home), "PYTHONUNBUFFERED": "1"}
    port = free_port()
    fleet = [] if workers is None else ["--workers", str(workers)]
    listen = [] if host is None else ["--host", host]
    process = subprocess.Popen(
        [sys.executable, "-m", "iraas.cli", "up", "--port", str(port), *fleet, *listen, *args],
        cwd=REPO_ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
    )
    try:
        startup = wait_for_line(process, "ready on", timeout_s=ready_s)
        stack = json.loads((home / "stack.json").read_text())
        yield RunningStack(home, env, process, stack, url=f"http://127.0.0.1:{port}", startup=startup)
    finally:
        process.terminate()
        try:
            process.wait(timeout=15)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


def wait_for_objects(s3: Any, bucket: str, keys: set[str], timeout_s: float, poll_s: float = 0.1) -> float:
    """Wait until every key is in the bucket (listing it, bounded); the time.monotonic() at which
    the last one was seen. Raises, naming the missing keys, after ``timeout_s``."""
    deadline = time.monotonic() + timeout_s
    missing = set(keys)
    while True:
        paginator = s3.get_paginator("list_objects_v2")
        found = {o["Key"] for page in paginator.paginate(Bucket=bucket) for o in page.get("Contents", [])}
        missing -= found
        if not missing:
            return time.monotonic()
        if time.monotonic() > deadline:
            raise AssertionError(
                f"{len(missing)} of {len(keys)} objects not in {bucket} within {timeout_s} s: {sorted(missing)[:10]}"
            )
        time.sleep(poll_s)
