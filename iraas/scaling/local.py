"""The local fleet: worker processes of the embedded stack, standing in for EC2 instances."""

from __future__ import annotations

import itertools
import threading
import time
from collections.abc import Callable
from typing import Protocol

from iraas.scaling.fleet import Member


class Process(Protocol):
    @property
    def alive(self) -> bool: ...

    def terminate(self) -> None: ...

    def wait_or_kill(self, deadline: float) -> None: ...


class LocalFleet:
    """Starts ``iraas worker`` processes; stopping one sends SIGTERM, so it finishes its batch."""

    name = "local"

    def __init__(self, spawn: Callable[[str], Process]) -> None:
        self._spawn = spawn  # worker id -> a started process running `iraas worker`
        self._processes: dict[str, Process] = {}
        self._stopping: set[str] = set()
        self._ids = (f"local-{n}" for n in itertools.count(1))
        self._lock = threading.Lock()

    def members(self) -> list[Member]:
        with self._lock:
            for worker_id in [w for w, p in self._processes.items() if not p.alive]:
                del self._processes[worker_id]  # exited: drained, crashed or killed
                self._stopping.discard(worker_id)
            return [Member(w, w in self._stopping) for w in self._processes]

    def launch(self, count: int) -> list[str]:
        with self._lock:
            ids = [next(self._ids) for _ in range(count)]
            for worker_id in ids:
                self._processes[worker_id] = self._spawn(worker_id)
            return ids

    def stop(self, ids: list[str]) -> None:
        with self._lock:
            for worker_id in ids:
                if worker_id in self._processes:
                    self._processes[worker_id].terminate()
                    self._stopping.add(worker_id)

    def shutdown(self, grace_s: float) -> None:
        """Stop everything: SIGTERM all, wait up to ``grace_s``, then kill what is left."""
        with self._lock:
            processes = list(self._processes.values())
        for process in processes:
            process.terminate()
        deadline = time.monotonic() + grace_s
        for process in processes:
            process.wait_or_kill(deadline)
