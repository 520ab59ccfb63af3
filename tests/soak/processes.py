"""The processes of a running ``iraas up``, named by their part, and their memory over time.

Every process of the stack descends from ``iraas up``: the endpoint (moto), the web tier, the
workers' zygote and the workers it forks, the face function's zygote and its runners.
"""

from __future__ import annotations

import contextlib
import re
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

import psutil

MIB = 1 << 20
TITLES = [  # what `ps` shows for each part, first match wins
    ("iraas endpoint", "moto"),
    ("iraas web", "web"),
    ("iraas zygote worker", "worker zygote"),
    ("iraas worker", "worker"),
    ("iraas zygote FaceRecognitionFunction", "face zygote"),
    ("iraas function FaceRecognitionFunction", "face runner"),
]


def part_of(process: psutil.Process, root_pid: int) -> str:
    """``iraas up``, ``moto``, ``web``, ``worker zygote``, ``worker``, ``face zygote``, ``face runner``
    (or the module it runs)."""
    if process.pid == root_pid:
        return "iraas up"
    command = " ".join(process.cmdline())
    # Their titles (iraas/proctitle.py); below, the command lines of processes without setproctitle.
    for title, part in TITLES:
        if command.startswith(title):
            return part
    forked = process.ppid() != root_pid  # without a title, a zygote's child has the zygote's command line
    if "iraas.local.moto_app" in command:
        return "moto"
    if "iraas.web.server" in command or "gunicorn" in command:
        return "web"
    if "FaceRecognitionFunction-zygote" in command or "iraas.local.lambda_runner" in command:
        return "face runner" if forked else "face zygote"
    if "iraas.local.zygote" in command:
        return "worker" if forked else "worker zygote"
    if "iraas.cli worker" in command or "-m iraas.cli worker" in command:
        return "worker"
    return command.split(" -m ", 1)[-1].split()[0] if " -m " in command else command[:40]


def stack_processes(root_pid: int) -> dict[int, str]:
    """pid -> part, for ``iraas up`` (``root_pid``) and every process below it."""
    root = psutil.Process(root_pid)
    found = {root_pid: "iraas up"}
    for child in root.children(recursive=True):
        with contextlib.suppress(psutil.Error):  # a worker that ended meanwhile
            if child.status() != psutil.STATUS_ZOMBIE:  # ended, not yet reaped by its zygote
                found[child.pid] = part_of(child, root_pid)
    return found


def pids_of(root_pid: int, part: str) -> list[int]:
    return sorted(pid for pid, p in stack_processes(root_pid).items() if p == part)


def busy_workers(home: Path, root_pid: int) -> list[int]:
    """The workers working on a batch now: the last batch line of each one's log (named by the
    zygote's ``forked local-4 as pid 123``) says ``batch received``, not ``batch done``."""
    logs = home / "logs"
    try:
        named = {int(pid): worker for worker, pid in re.findall(r"forked (\S+) as pid (\d+)", (logs / "zygote.log").read_text())}
    except OSError:
        return []
    busy = []
    for pid in pids_of(root_pid, "worker"):
        try:
            text = (logs / f"{named[pid]}.log").read_text(errors="replace")
        except (KeyError, OSError):
            continue
        if text.rfind("batch received") > text.rfind("batch done"):
            busy.append(pid)
    return busy


@dataclass
class Track:
    """One process's resident memory, sampled: (time.monotonic(), RSS bytes, bytes the stream had
    stored in the stack by then)."""

    pid: int
    part: str
    samples: list[tuple[float, int, int]] = field(default_factory=list)

    @property
    def start(self) -> int:
        return self.samples[0][1]

    @property
    def end(self) -> int:
        return self.samples[-1][1]

    @property
    def stored_since(self) -> int:
        """What the stream stored between the first sample and the last."""
        return self.samples[-1][2] - self.samples[0][2]

    @property
    def lived_s(self) -> float:
        return self.samples[-1][0] - self.samples[0][0]

    @property
    def growth(self) -> int:
        return self.end - self.start

    @property
    def late_growth(self) -> int:
        """The growth over the second half of the samples: a leak keeps growing there, warm-up does not."""
        return self.end - self.samples[len(self.samples) // 2][1]


class MemoryLog:
    """Each stack process's RSS at each sample (after warm-up, during and after each phase, at the end)."""

    def __init__(self, root_pid: int) -> None:
        self.root_pid = root_pid
        self.tracks: dict[int, Track] = {}
        self._lock = threading.Lock()  # a sample from a timer thread, mid-phase

    def sample(self, stored: int) -> None:
        with self._lock:
            self._sample(stored)

    def _sample(self, stored: int) -> None:
        now = time.monotonic()
        for pid, part in stack_processes(self.root_pid).items():
            try:
                rss = psutil.Process(pid).memory_info().rss
            except psutil.Error:
                continue
            track = self.tracks.setdefault(pid, Track(pid, part))
            track.samples.append((now, rss, stored))

    def compared(self, min_samples: int = 2) -> list[Track]:
        """The processes sampled at least ``min_samples`` times, long-lived parts first."""
        order = ["iraas up", "moto", "web", "worker zygote", "face zygote", "face runner", "worker"]
        tracks = [t for t in self.tracks.values() if len(t.samples) >= min_samples]
        return sorted(tracks, key=lambda t: (order.index(t.part) if t.part in order else len(order), t.pid))
