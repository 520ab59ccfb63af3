"""moto's server as a child process: the embedded stack's AWS endpoint.

The child runs ``iraas.local.moto_app``: moto's own server with its hot path patched (see there);
given a state folder, it provisions the template and restores the kept data before it listens
(``iraas/local/durable``).
"""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from collections.abc import Mapping
from pathlib import Path
from types import TracebackType
from typing import IO

from iraas.aws import local_credentials_env
from iraas.local.supervisor import die_with_parent


class MotoServerError(RuntimeError):
    """The server did not start (or died); the message carries the tail of its log."""


def free_port(host: str = "127.0.0.1") -> int:
    """A port that is free now (another process may still take it before moto binds it)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((host, 0))
        return int(sock.getsockname()[1])


class MotoServer:
    """``python -m iraas.local.moto_app`` (moto's server, patched) on ``host:port`` (port 0: a free
    one), as a context manager."""

    def __init__(
        self,
        host: str = "127.0.0.1",
        port: int = 0,
        *,
        start_timeout_s: float = 30.0,
        log_path: str | Path | None = None,
        state_dir: Path | None = None,
        template: Path | None = None,
        region: str = "us-east-1",
        env: Mapping[str, str] | None = None,
    ) -> None:
        self.host, self.port = host, port
        self.env = dict(env or {})  # more of the server's environment (iraas up's IRAAS_HOME: its title shows it)
        self.start_timeout_s = start_timeout_s
        self.log_path = Path(log_path) if log_path else None
        self.state_dir, self.template, self.region = state_dir, template, region
        if state_dir is not None and template is None:
            raise ValueError("a state folder needs the template to provision")
        self._process: subprocess.Popen[bytes] | None = None
        self._log: IO[bytes] | None = None
        self._url: str | None = None

    @property
    def url(self) -> str:
        if self._url is None:
            raise MotoServerError("moto server is not running")
        return self._url

    @property
    def running(self) -> bool:
        return self._process is not None and self._process.poll() is None

    @property
    def exit_status(self) -> int | None:
        """The server's exit status once it has exited on its own (None while it runs)."""
        return None if self._process is None else self._process.poll()

    def start(self) -> str:
        """Start the server and wait until it answers; return its URL. The port it got is kept:
        :meth:`restart` comes back on it, where every client still points."""
        if self.running:
            return self.url
        # A port chosen here can be taken before moto binds it: try again with another.
        attempts = 3 if self.port == 0 else 1
        for attempt in range(1, attempts + 1):
            port = self.port or free_port(self.host)
            try:
                url = self._start_on(port)
            except MotoServerError as exc:
                if attempt == attempts or "Address already in use" not in str(exc):
                    raise
            else:
                self.port = port
                return url
        raise AssertionError("unreachable")

    def restart(self) -> str:
        """Start again on the same port after the server died (its kept state comes back)."""
        self.stop()
        return self.start()

    def _start_on(self, port: int) -> str:
        # A file, not a pipe: moto logs every request, and a pipe nobody reads would fill up and
        # block the server.
        # Open for the server's lifetime (closed in stop()), so not a with-block.
        self._log = open(self.log_path, "ab") if self.log_path else tempfile.TemporaryFile()  # noqa: SIM115
        env = {**os.environ, **self.env, **local_credentials_env(), "MOTO_PORT": str(port)}
        command = [sys.executable, "-m", "iraas.local.moto_app", "-H", self.host, "-p", str(port)]
        if self.state_dir is not None:
            command += ["--state", str(self.state_dir), "--template", str(self.template), "--region", self.region]
        self._process = subprocess.Popen(
            command,
            stdin=subprocess.DEVNULL,
            stdout=self._log,
            stderr=subprocess.STDOUT,
            env=env,
            # As the stack's other children: a Ctrl-C reaches only iraas up, which stops the endpoint
            # last, after the others have finished with it; and it goes if iraas up is killed.
            start_new_session=True,
            preexec_fn=die_with_parent if sys.platform.startswith("linux") else None,
        )
        url = f"http://{self.host}:{port}"
        deadline = time.monotonic() + self.start_timeout_s
        while time.monotonic() < deadline:
            if self._process.poll() is not None:
                code, tail = self._process.returncode, self.log_tail()
                self.stop()
                raise MotoServerError(f"moto server exited with status {code}:\n{tail}")
            if _answers(url):
                self._url = url
                return url
            time.sleep(0.1)
        tail = self.log_tail()
        self.stop()
        raise MotoServerError(
            f"moto server did not answer on {url} within {self.start_timeout_s:g} s:\n{tail}"
        )

    def log_tail(self, max_bytes: int = 4000) -> str:
        """The end of the server's output, for error messages."""
        if self._log is None or self._log.closed:
            return ""
        self._log.flush()
        self._log.seek(0, os.SEEK_END)
        size = self._log.tell()
        self._log.seek(max(0, size - max_bytes))
        return self._log.read().decode("utf-8", "replace")

    def stop(self, timeout_s: float = 5.0) -> None:
        """Terminate the server; kill it if it has not exited after ``timeout_s``."""
        process, self._process, self._url = self._process, None, None
        if process is not None and process.poll() is None:
            process.terminate()
            try:
                process.wait(timeout_s)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait(timeout_s)
        if self._log is not None:
            self._log.close()
            self._log = None

    def __enter__(self) -> MotoServer:
        self.start()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.stop()


def _answers(url: str) -> bool:
    """True once moto's own API answers (it is served by the same app as the AWS services)."""
    try:
        with urllib.request.urlopen(f"{url}/moto-api/config", timeout=1) as response:
            return 200 <= response.status < 300
    except (urllib.error.URLError, ConnectionError, TimeoutError):
        return False
