"""``iraas up``: the whole service on one machine, with no AWS account.

moto's server stands in for AWS and is provisioned from template.yaml; the web tier is the
Chalice app served like ``chalice local``; local worker processes run ``iraas worker``, the same
entry point the EC2 instances' systemd unit runs. Every piece talks to the endpoint with boto3,
exactly as in AWS.
"""

from __future__ import annotations

import ctypes
import json
import os
import signal
import socket
import subprocess
import sys
import threading
import time
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

from iraas import aws, fleet_status
from iraas.config import Settings, load_settings, settings_env
from iraas.local.motoserver import MotoServer, local_credentials_env
from iraas.local.provision import provision
from iraas.local.stackfile import remove_stack_file, write_stack_file
from iraas.local.template import load_template

REPO_ROOT = Path(__file__).resolve().parents[2]
TEMPLATE = REPO_ROOT / "template.yaml"
STOP_GRACE_S = 6.0  # a worker finishing its batch; the whole stop stays under 10 s


class StackError(RuntimeError):
    """The embedded stack could not start; the message says why and what to do."""


def _die_with_parent() -> None:
    """In a child: get SIGTERM if ``iraas up`` dies without cleaning up (Linux only)."""
    try:
        ctypes.CDLL("libc.so.6", use_errno=True).prctl(1, signal.SIGTERM)  # PR_SET_PDEATHSIG
    except OSError:
        pass


@dataclass
class Child:
    name: str
    args: list[str]
    log_path: Path
    process: subprocess.Popen | None = None
    ready_file: Path | None = None

    def start(self, env: dict[str, str], cwd: Path) -> None:
        self.log_path.parent.mkdir(parents=True, exist_ok=True)
        log = open(self.log_path, "ab")
        # Own session: Ctrl-C reaches only `iraas up`, which then stops children in order.
        self.process = subprocess.Popen(
            self.args,
            cwd=cwd,
            env=env,
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
            preexec_fn=_die_with_parent if sys.platform.startswith("linux") else None,
        )
        log.close()

    @property
    def alive(self) -> bool:
        return self.process is not None and self.process.poll() is None

    def terminate(self) -> None:
        if self.alive:
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


@dataclass
class EmbeddedStack:
    home: Path
    host: str = "127.0.0.1"
    port: int = 8000
    workers: int = 2
    template: Path = TEMPLATE
    say: Callable[[str], None] = print
    settings: Settings | None = None
    moto: MotoServer | None = None
    web: Child | None = None
    worker_children: list[Child] = field(default_factory=list)
    _stopping: threading.Event = field(default_factory=threading.Event)
    _env: dict[str, str] = field(default_factory=dict)

    @property
    def url(self) -> str:
        return f"http://{self.host}:{self.port}"

    # ---- start ---------------------------------------------------------------------------

    def start(self) -> Settings:
        if not port_is_free(self.host, self.port):
            raise StackError(f"port {self.port} on {self.host} is in use; choose another with --port")
        (self.home / "logs").mkdir(parents=True, exist_ok=True)
        os.environ.update(local_credentials_env())  # this process provisions and reads queues too
        os.environ.pop("AWS_PROFILE", None)  # a profile would override the embedded credentials
        aws.reset_clients()

        self.moto = MotoServer(host=self.host, log_path=self.home / "logs" / "moto.log")
        endpoint = self.moto.start()
        self.say(f"AWS endpoint (moto) on {endpoint}")
        region = os.environ.get("IRAAS_REGION", "us-east-1")
        resources = provision(load_template(self.template), endpoint_url=endpoint, region=region)
        write_stack_file(self.home / "stack.json", endpoint, region, resources)
        self.say(f"provisioned {len(resources)} resources from {self.template.name}; see {self.home / 'stack.json'}")
        self.settings = settings = load_settings({**os.environ, "IRAAS_HOME": str(self.home)})

        self._ensure_model(settings)
        env = {**os.environ, **local_credentials_env(), **settings_env(settings)}
        env.setdefault("IRAAS_ORT_THREADS", str(max(1, (os.cpu_count() or 1) // max(1, self.workers))))
        self._env = env
        logs = self.home / "logs"
        self.web = Child(
            "web",
            [sys.executable, "-m", "iraas.local.web", "--host", self.host, "--port", str(self.port)],
            logs / "web.log",
        )
        self.web.start(env, REPO_ROOT)
        ready_dir = self.home / "ready"
        ready_dir.mkdir(exist_ok=True)
        for n in range(self.workers):
            ready = ready_dir / f"worker-{n}"
            ready.unlink(missing_ok=True)
            child = Child(
                f"worker-{n}",
                [sys.executable, "-m", "iraas.cli", "worker", "--ready-file", str(ready)],
                logs / f"worker-{n}.log",
                ready_file=ready,
            )
            child.start(env, REPO_ROOT)
            self.worker_children.append(child)
        self.publish_fleet()
        return settings

    def _ensure_model(self, settings: Settings) -> None:
        from iraas.classify.export import ensure_model

        # Built once here, so that the workers do not all build it at the same time.
        ensure_model(settings.model_dir, progress=self.say)

    def wait_ready(self, timeout_s: float = 180.0) -> None:
        """Return once a request would succeed: the web tier answers and a worker is warm."""
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            for child in [self.web, *self.worker_children]:
                if not child.alive:
                    raise StackError(f"{child.name} exited; see {child.log_path}:\n{_tail(child.log_path)}")
            if self._healthy() and any(c.ready_file.exists() for c in self.worker_children):
                return
            time.sleep(0.2)
        raise StackError(f"the stack was not ready within {timeout_s:.0f} s; logs are in {self.home / 'logs'}")

    def _healthy(self) -> bool:
        try:
            with urllib.request.urlopen(f"{self.url}/v1/healthz", timeout=2) as response:
                return response.status == 200
        except OSError:
            return False

    # ---- run -----------------------------------------------------------------------------

    def publish_fleet(self) -> None:
        running = sum(child.alive for child in self.worker_children)
        fleet_status.publish(
            aws.client(self.settings, "s3"),
            self.settings.image_output_bucket,
            fleet_status.FleetStatus(running=running, desired=self.workers, fleet="local"),
        )

    def report_results(self) -> None:
        """Print one line per answered request, draining the response queue (its consumer here)."""
        sqs = aws.client(self.settings, "sqs")
        while not self._stopping.is_set():
            try:
                messages = sqs.receive_message(
                    QueueUrl=self.settings.response_queue_url, MaxNumberOfMessages=10, WaitTimeSeconds=1
                ).get("Messages", [])
            except Exception:  # noqa: BLE001 - the endpoint is going away during shutdown
                if self._stopping.is_set():
                    return
                time.sleep(1)
                continue
            for message in messages:
                result = json.loads(message["Body"])
                if result.get("status") == "done":
                    self.say(f"  {result['id'][:8]} {result['name']}: {result['label']} ({result['confidence']:.2f})")
                else:
                    self.say(f"  {result['id'][:8]} {result['name']}: failed, {result.get('error', {}).get('message')}")
            if messages:
                sqs.delete_message_batch(
                    QueueUrl=self.settings.response_queue_url,
                    Entries=[{"Id": str(i), "ReceiptHandle": m["ReceiptHandle"]} for i, m in enumerate(messages)],
                )

    def supervise(self, stop: threading.Event) -> None:
        """Keep the processes up until ``stop``: restart a crashed worker, publish the fleet size."""
        while not stop.wait(2.0):
            if not self.web.alive:
                raise StackError(f"the web tier exited; see {self.web.log_path}:\n{_tail(self.web.log_path)}")
            for child in self.worker_children:
                if not child.alive:
                    self.say(f"{child.name} exited with {child.process.returncode}; restarting it")
                    child.start(self._env, REPO_ROOT)
            self.publish_fleet()

    # ---- stop ----------------------------------------------------------------------------

    def stop(self) -> None:
        """Stop the web tier, let workers finish their batch, then stop the endpoint."""
        self._stopping.set()
        deadline = time.monotonic() + STOP_GRACE_S
        children = [c for c in [self.web, *self.worker_children] if c is not None]
        for child in children:
            child.terminate()
        for child in children:
            child.wait_or_kill(deadline)
        if self.moto is not None:
            self.moto.stop()
        remove_stack_file(self.home / "stack.json")


def _tail(path: Path, lines: int = 20) -> str:
    try:
        return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])
    except OSError:
        return "(no log)"


def up(home: Path, host: str, port: int, workers: int, say: Callable[[str], None] = print) -> int:
    """Run the embedded stack in the foreground until Ctrl-C or SIGTERM."""
    stack = EmbeddedStack(home=home, host=host, port=port, workers=workers, say=say)
    stop = threading.Event()

    def on_signal(signum: int, _frame: object) -> None:
        stop.set()
        raise KeyboardInterrupt

    # Set both explicitly: a process started in the background inherits an ignored SIGINT.
    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGINT, on_signal)
    try:
        stack.start()
        stack.wait_ready()
        reporter = threading.Thread(target=stack.report_results, name="results", daemon=True)
        reporter.start()
        say(f"IRaaS is ready on {stack.url} ({workers} workers; logs in {home / 'logs'}). Ctrl-C stops it.")
        stack.supervise(stop)
        return 0
    except KeyboardInterrupt:
        say("stopping...")
        return 0
    except StackError as exc:
        say(f"error: {exc}")
        return 1
    finally:
        # A second Ctrl-C must not cut the orderly stop short; it is bounded by STOP_GRACE_S.
        signal.signal(signal.SIGINT, signal.SIG_IGN)
        signal.signal(signal.SIGTERM, signal.SIG_IGN)
        stack.stop()
        say("stopped")
