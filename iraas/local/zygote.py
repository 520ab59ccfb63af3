"""The zygote: local workers (and function runners) forked, ready in a fraction of a second.

A fresh ``iraas worker`` spends most of its start importing numpy, the runtimes and boto3 and
parsing botocore's service models; on the 2-core development machine a burst that started a
dozen of them at once spent seconds on nothing else. The zygote is one long-lived child of
``iraas up`` (``python -m iraas.local.zygote``) that does all of that once, reads the model file,
and then forks one worker per request. The child creates its inference session after the
fork (sessions and their threads do not survive one) by running the worker's own entry point,
:func:`iraas.images.worker.serve`, as ``iraas worker`` does.

Each forked worker is still a process of its own (a crash kills only it) in a session of its own,
with its ``IRAAS_WORKER_ID``, its own log (``.iraas/logs/local-N.log``) and its ready file; it gets
SIGTERM (and drains its batch) when the fleet stops it, and when the zygote dies, which happens
when ``iraas up`` dies (each link asks the kernel for SIGTERM on its parent's death).

What the zygote preloads and what its children run is its *entry* (``--entry module:function``,
:data:`IMAGE_WORKER` by default): called once in the zygote with the ``--options`` (JSON), it
preloads and returns the function each forked child runs with its request. The face function's
runners use the same zygote with ``iraas.local.lambda_runner:preforked`` (its handler and models
loaded once; see :mod:`iraas.local.functions`).

``iraas up`` talks to the zygote over a socket pair: it sends ``{"id", "ready_file", "log"}``;
the zygote forks and answers with the child's pid and a pidfd for it (``SCM_RIGHTS``), which
``iraas up`` signals and polls (:class:`ForkedWorker`), so a recycled pid is never signalled.
The zygote reaps its children. Closing ``iraas up``'s end of the socket stops the zygote.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import logging
import os
import select
import signal
import socket
import subprocess
import sys
import threading
import time
import traceback
from collections.abc import Callable, Mapping
from importlib import import_module
from pathlib import Path
from typing import Any

from iraas.images.settings import ImageSettings
from iraas.local.supervisor import die_with_parent, log_tail
from iraas.proctitle import set_title, stack_of, zygote_title

log = logging.getLogger("iraas.zygote")

MAX_MESSAGE = 65536
REPLY_TIMEOUT_S = 60.0  # the first request waits for the preload (about a second; more when loaded)
REAP_EVERY_S = 0.5
KILL_WAIT_S = 5.0  # after SIGKILL, how long to wait for the process to be gone
IMAGE_WORKER = "iraas.local.zygote:image_worker"  # the default entry: `iraas worker`'s serve()

Run = Callable[[dict[str, Any]], int]  # in a forked child: its request -> its exit status
Entry = Callable[[dict[str, Any]], Run]  # in the zygote: its options -> (preloaded) what children run


class ZygoteError(RuntimeError):
    """The zygote could not fork a worker (it is not running, or it failed); says why."""


# ---- in iraas up -------------------------------------------------------------------------------


class ForkedWorker:
    """A worker forked by the zygote, as the local fleet sees it (``iraas.scaling.local.Process``).

    It is the zygote's child, not ours, so it is watched and signalled through a pidfd: readable
    once the process has exited, and never pointing at another process that reuses the pid.
    """

    def __init__(self, name: str, pid: int, pidfd: int) -> None:
        self.name = name
        self.pid = pid
        self._fd: int | None = pidfd
        self._lock = threading.Lock()

    @property
    def alive(self) -> bool:
        return not self._exited(0.0)

    def terminate(self) -> None:
        self._signal(signal.SIGTERM)

    def wait_or_kill(self, deadline: float) -> None:
        if self._exited(max(0.0, deadline - time.monotonic())):
            return
        self._signal(signal.SIGKILL)
        self._exited(KILL_WAIT_S)

    def _signal(self, signum: int) -> None:
        with self._lock:
            if self._fd is not None:
                with contextlib.suppress(ProcessLookupError):  # exited meanwhile
                    signal.pidfd_send_signal(self._fd, signum)

    def _exited(self, timeout_s: float) -> bool:
        """Wait up to ``timeout_s`` for the process to exit; whether it has."""
        deadline = time.monotonic() + timeout_s
        while True:
            with self._lock:  # in slices, so that alive() from another thread never waits long
                if self._fd is None:
                    return True
                poller = select.poll()  # not select(): a descriptor may be numbered past 1024
                poller.register(self._fd, select.POLLIN)
                if poller.poll(int(min(0.1, max(0.0, deadline - time.monotonic())) * 1000)):
                    os.close(self._fd)
                    self._fd = None
                    return True
            if time.monotonic() >= deadline:
                return False

    def __del__(self) -> None:
        if self._fd is not None:
            with contextlib.suppress(OSError):
                os.close(self._fd)


class Zygote:
    """The zygote process, started by ``iraas up``; :meth:`spawn` forks a worker from it.

    ``entry`` and ``options`` say what it preloads and what its children run (the image worker by
    default); ``niceness`` lowers its priority, and so its children's, which inherit it."""

    def __init__(
        self,
        ready_file: Path,
        log_path: Path,
        entry: str = IMAGE_WORKER,
        options: Mapping[str, Any] | None = None,
        niceness: int = 0,
        label: str = "worker zygote",
    ) -> None:
        self.ready_file = ready_file  # written once the preload is done
        self.log_path = log_path
        self.entry = entry
        self.options = dict(options or {})
        self.niceness = niceness
        self.label = label  # how messages name it
        self.started_at = 0.0  # time.monotonic() of the last start
        self.process: subprocess.Popen[bytes] | None = None
        self._control: socket.socket | None = None
        self._lock = threading.Lock()

    def start(self, env: dict[str, str], cwd: Path) -> None:
        """Start it (it preloads in the background; the first :meth:`spawn` waits for that)."""
        ours, theirs = socket.socketpair(socket.AF_UNIX, socket.SOCK_SEQPACKET)
        self.ready_file.unlink(missing_ok=True)
        self.log_path.parent.mkdir(parents=True, exist_ok=True)
        self.started_at = time.monotonic()
        command = [
            sys.executable, "-m", "iraas.local.zygote",
            "--ready-file", str(self.ready_file), "--control-fd", str(theirs.fileno()),
        ]
        if self.entry != IMAGE_WORKER or self.options:
            command += ["--entry", self.entry, "--options", json.dumps(self.options)]
        niceness = self.niceness

        def in_child() -> None:
            if sys.platform.startswith("linux"):
                die_with_parent()
            if niceness:
                os.nice(niceness)

        with open(self.log_path, "ab") as log_file, theirs:
            self.process = subprocess.Popen(
                command,
                cwd=cwd,
                env=env,
                stdin=subprocess.DEVNULL,
                stdout=log_file,
                stderr=subprocess.STDOUT,
                pass_fds=[theirs.fileno()],
                start_new_session=True,  # Ctrl-C reaches only `iraas up`
                preexec_fn=in_child,
            )
        self._control = ours

    @property
    def ready(self) -> bool:
        """Whether its preload is done (a :meth:`spawn` now answers at once)."""
        return self.alive and self.ready_file.exists()

    @property
    def alive(self) -> bool:
        return self._control is not None and self.process is not None and self.process.poll() is None

    def spawn(self, worker_id: str, ready_file: Path, log_path: Path) -> ForkedWorker:
        """Fork a child that runs the entry's function (for the image worker: ``serve`` with
        ``IRAAS_WORKER_ID=worker_id``)."""
        request = {"id": worker_id, "ready_file": str(ready_file), "log": str(log_path)}
        with self._lock:
            control = self._control
            if control is None or not self.alive:
                raise ZygoteError(f"the {self.label} is not running; see {self.log_path}:\n{log_tail(self.log_path)}")
            try:
                control.settimeout(REPLY_TIMEOUT_S)
                control.send(json.dumps(request).encode())
                data, fds, _flags, _addr = socket.recv_fds(control, MAX_MESSAGE, 1)
            except OSError as exc:  # a timeout too: a late answer would go to the next request
                self._close()
                raise ZygoteError(f"the {self.label} did not answer ({exc}); see {self.log_path}") from None
        if not data:
            self._close()
            raise ZygoteError(f"the {self.label} exited; see {self.log_path}:\n{log_tail(self.log_path)}")
        try:
            reply = json.loads(data)
        except ValueError:
            reply = {"error": f"an answer that is not JSON: {data[:200]!r}"}
        if "error" in reply or not fds:
            for fd in fds:
                os.close(fd)
            raise ZygoteError(f"the {self.label} could not fork {worker_id}: {reply.get('error', 'no pidfd')}")
        return ForkedWorker(worker_id, int(reply["pid"]), fds[0])

    def stop(self, deadline: float) -> None:
        """Close the socket (the zygote exits when it sees that), then make sure it has."""
        with self._lock:
            self._close()
        if self.process is None:
            return
        try:
            self.process.wait(timeout=max(0.1, deadline - time.monotonic()))
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()

    def _close(self) -> None:
        if self._control is not None:
            self._control.close()
            self._control = None


# ---- the zygote process ------------------------------------------------------------------------


def preload() -> ImageSettings:
    """Everything a worker needs before its session: imports, settings, the model's bytes in the
    page cache, botocore's parsed service models. Returns the settings.

    It opens no connection and starts no thread of its own, so that forking stays safe. The only
    other threads are the idle ones that numpy (OpenBLAS) and onnxruntime start at import; workers
    forked beside them run (tests/integration/local/test_zygote.py). The inference session, whose
    threads would not survive a fork, is only ever created in the child."""
    started = time.perf_counter()
    import numpy  # noqa: F401
    import onnxruntime  # noqa: F401
    from PIL import Image

    import iraas.images.model.runtime  # noqa: F401 - what serve() imports; it hides OpenVINO's telemetry
    from iraas import aws
    from iraas.images import worker  # noqa: F401
    from iraas.images.settings import load_image_settings

    # After the runtime module (so OpenVINO's telemetry stays hidden); no threads at import, and
    # Core() starts none either: an import each worker does not repeat.
    import_module("openvino")
    settings = load_image_settings()
    Image.init()  # the image format plugins, imported on the first decode otherwise
    model_bytes = 0
    for path in sorted(Path(settings.model_dir).expanduser().glob("*.onnx")):
        with path.open("rb") as f:  # into the page cache; each worker's session reads it again
            while chunk := f.read(1 << 20):
                model_bytes += len(chunk)
    for service in ("s3", "sqs"):  # the clients the worker will use: created, never called
        aws.client(settings, service)
    _warm_caches(settings)
    _compile_once(settings)
    log.info(
        "preloaded in %.0f ms (%d MB of model files read); forking workers",
        (time.perf_counter() - started) * 1000, model_bytes >> 20,
        extra={"threads": len(os.listdir("/proc/self/task")) if os.path.isdir("/proc/self/task") else None},
    )
    return settings


def _warm_caches(settings: ImageSettings) -> None:
    """Cached lookups the worker does on its way to the session (best effort: a cache that has
    moved only costs the worker a few milliseconds)."""
    try:
        from iraas.images.model.files import find_model
        from iraas.images.model.labels import imagenet_labels

        imagenet_labels()
        find_model(settings.model_dir, settings.model)  # hashes the packaged weights once (lru-cached)
    except Exception as exc:  # noqa: BLE001
        log.info("could not warm a cache: %s", exc)


def _compile_once(settings: ImageSettings) -> None:
    """With OpenVINO, compile the workers' model once, in a short-lived child, into OpenVINO's
    cache in the model folder: each forked worker then loads it instead of compiling it, and no
    two workers write the same cache entry at once. A child, because compiling starts threads that
    a later fork would not carry."""
    if settings.runtime != "openvino":
        return
    pid = os.fork()
    if pid == 0:  # pragma: no cover - the child's coverage is not collected
        code = 1
        try:
            from iraas.images.model.runtime import load_classifier

            load_classifier(settings.model_dir, threads=settings.worker.threads, model=settings.model,
                            runtime=settings.runtime, progress=lambda _line: None)
            code = 0
        finally:
            os._exit(code)
    _, status = os.waitpid(pid, 0)
    if status != 0:
        log.info("could not compile the model ahead of the workers (status %d); each compiles its own", status)


def image_worker(_options: dict[str, Any]) -> Run:
    """The default entry: preload the image worker; each child runs ``iraas worker``'s ``serve``
    (which titles it ``iraas worker <id>``)."""
    set_title(zygote_title("worker"), stack_of())
    settings = preload()

    def run(request: dict[str, Any]) -> int:
        os.environ["IRAAS_WORKER_ID"] = str(request["id"])
        from iraas.images.worker import serve

        serve(settings, ready_file=str(request["ready_file"]))
        return 0

    return run


def load_entry(spec: str) -> Entry:
    """``module:function`` -> the function."""
    module, _, name = spec.partition(":")
    if not module or not name:
        raise ValueError(f"an entry is module:function, not {spec!r}")
    entry: Entry = getattr(import_module(module), name)
    return entry


def serve_forks(control: socket.socket, run: Run) -> None:
    """Fork a worker per request until ``iraas up`` closes its end; reap the exited ones."""
    me = os.getpid()
    while True:
        _reap()
        if not select.select([control], [], [], REAP_EVERY_S)[0]:
            continue
        try:
            data = control.recv(MAX_MESSAGE)
        except OSError:
            data = b""
        if not data:
            log.info("iraas up closed the socket: stopping")
            return
        fds: list[int] = []
        try:
            request = json.loads(data)
            pid = _fork_worker(request, control, run, me)
            try:
                fds = [os.pidfd_open(pid)]  # before any reaping: the pid is still this child's
            except OSError:
                os.kill(pid, signal.SIGKILL)  # a worker nobody could watch or stop
                raise
            reply: dict[str, Any] = {"pid": pid}
            log.info("forked %s as pid %d", request["id"], pid)
        except Exception as exc:  # noqa: BLE001 - the request fails, the zygote goes on
            log.exception("could not fork a worker")
            reply = {"error": f"{type(exc).__name__}: {exc}"}
        try:
            socket.send_fds(control, [json.dumps(reply).encode()], fds)
        except OSError:
            return  # iraas up is gone
        finally:
            for fd in fds:
                os.close(fd)


def _reap() -> None:
    with contextlib.suppress(ChildProcessError):
        while True:
            pid, _status = os.waitpid(-1, os.WNOHANG)
            if pid == 0:
                return


def _fork_worker(request: dict[str, Any], control: socket.socket, run: Run, zygote_pid: int) -> int:
    sys.stdout.flush()
    sys.stderr.flush()
    pid = os.fork()
    if pid:
        return pid
    code = 1
    try:  # the child: never returns into the zygote's loop
        code = _become_worker(request, control, run, zygote_pid)
    except SystemExit as exc:
        code = exc.code if isinstance(exc.code, int) else int(exc.code is not None)
    except BaseException:  # noqa: BLE001 - logged, then the process exits
        traceback.print_exc()
    finally:
        with contextlib.suppress(Exception):
            logging.shutdown()
            sys.stdout.flush()
            sys.stderr.flush()
        os._exit(code)


def _become_worker(request: dict[str, Any], control: socket.socket, run: Run, zygote_pid: int) -> int:
    control.close()
    for signum in (signal.SIGTERM, signal.SIGINT, signal.SIGCHLD):
        signal.signal(signum, signal.SIG_DFL)  # run() installs its own for SIGTERM and SIGINT
    os.setsid()
    die_with_parent()  # SIGTERM when the zygote dies: `iraas up` has died
    if os.getppid() != zygote_pid:
        return 0  # it died before we asked
    fd = os.open(str(request["log"]), os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o644)
    os.dup2(fd, 1)
    os.dup2(fd, 2)
    os.close(fd)
    return run(request)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m iraas.local.zygote", description=__doc__.splitlines()[0])
    parser.add_argument("--ready-file", required=True, help="written once the preload is done")
    parser.add_argument("--control-fd", type=int, required=True, help="our end of the socket pair")
    parser.add_argument("--entry", default=IMAGE_WORKER, help="module:function that preloads (default: the image worker)")
    parser.add_argument("--options", default="{}", help="JSON object passed to the entry")
    args = parser.parse_args(argv)
    from iraas import logs

    logs.configure()  # to stderr: in a forked worker, its own log
    control = socket.socket(fileno=args.control_fd)
    run = load_entry(args.entry)(json.loads(args.options))
    Path(args.ready_file).write_text(str(os.getpid()))
    serve_forks(control, run)
    return 0


if __name__ == "__main__":
    sys.exit(main())
