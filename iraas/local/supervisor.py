"""Child processes of the embedded stack: started in their own session, logged to a file, and
stopped in order (SIGTERM, a grace period, then SIGKILL)."""

from __future__ import annotations

import contextlib
import ctypes
import signal
import socket
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

QUICK_EXIT_S = 5.0  # a child that exits sooner than this after its start...
MAX_QUICK_EXITS = 3  # ...this many times in a row is broken, not unlucky


class CrashLoop(RuntimeError):
    """A child keeps dying right after its start; the message has the tail of its log."""


def die_with_parent() -> None:
    """In a child: get SIGTERM if ``iraas up`` dies without cleaning up (Linux only)."""
    with contextlib.suppress(OSError):
        ctypes.CDLL("libc.so.6", use_errno=True).prctl(1, signal.SIGTERM)  # PR_SET_PDEATHSIG


@dataclass
class Child:
    name: str
    args: list[str]
    log_path: Path
    process: subprocess.Popen | None = None
    started_at: float = 0.0  # time.monotonic() of the last start

    def start(self, env: dict[str, str], cwd: Path) -> None:
        self.started_at = time.monotonic()
        self.log_path.parent.mkdir(parents=True, exist_ok=True)
        # The child keeps its own copy of the log's descriptor.
        with open(self.log_path, "ab") as log:
            # Own session: Ctrl-C reaches only `iraas up`, which then stops children in order.
            self.process = subprocess.Popen(
                self.args,
                cwd=cwd,
                env=env,
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,
                preexec_fn=die_with_parent if sys.platform.startswith("linux") else None,
            )

    @property
    def alive(self) -> bool:
        return self.process is not None and self.process.poll() is None

    def terminate(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)

    def wait_or_kill(self, deadline: float) -> None:
        if self.process is None:
            return
        try:
            self.process.wait(timeout=max(0.0, deadline - time.monotonic()))
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()


def port_is_free(host: str, port: int) -> bool:
    with socket.socket() as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind((host, port))
        except OSError:
            return False
    return True


def log_tail(path: Path, lines: int = 20) -> str:
    try:
        return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])
    except OSError:
        return "(no log)"
