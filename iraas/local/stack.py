"""``iraas up``: the whole service on one machine, with no AWS account.

moto's server stands in for AWS and is provisioned from template.yaml; the web tier is the
Chalice app served like ``chalice local``; local worker processes run ``iraas worker``'s entry
point, the same one the EC2 instances' systemd unit runs, forked from a zygote that has imported
the runtime (``iraas/local/zygote.py``), as many as the machine's cores unless told otherwise
(``iraas/local/capacity.py``). Every piece talks to the endpoint with boto3, exactly as in AWS.
"""

from __future__ import annotations

import functools
import os
import signal
import sys
import threading
import time
import urllib.request
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from iraas import aws
from iraas.aws import faults, local_credentials_env
from iraas.callbacks.settings import callbacks_enabled
from iraas.config import REPO_ROOT, TEMPLATE, usable_cores
from iraas.images import replies
from iraas.images.settings import ImageSettings, load_image_settings, settings_env
from iraas.local import lifecycle
from iraas.local.api_key import generated_key, is_loopback_host
from iraas.local.capacity import local_scaling
from iraas.local.durable import STATE_FILE, Restored, remove_state
from iraas.local.functions import FunctionPool
from iraas.local.motoserver import MotoServer, MotoServerError
from iraas.local.privacy import keep_private
from iraas.local.provision import provision
from iraas.local.reporter import report_results
from iraas.local.stackfile import remove_stack_file, write_stack_file
from iraas.local.supervisor import Child, CrashLoop, log_tail, port_is_free
from iraas.local.template import load_template
from iraas.local.zygote import Zygote, ZygoteError
from iraas.proctitle import set_title, up_title
from iraas.queues import queue_depth
from iraas.scaling.local import LocalFleet, Process
from iraas.scaling.scaler import Scaler
from iraas.scaling.settings import load_scaling_config, load_scaling_settings
from iraas.web.admission import load_web_limits
from iraas.web.auth import API_KEY_ENV, load_auth_settings

ENDPOINT_START_S = 120.0  # provisioning and restoring a large state folder before it listens
# An orderly stop, all within the 10 s docs/embedded-stack.md promises: the web tier first (its waiting
# requests still get answers from the workers meanwhile), then the workers finish their batches,
# the endpoint last.
STOP_BUDGET_S = 9.0
WEB_DRAIN_S = 4.0  # the web tier's waiting requests get this long, then a 503 with Retry-After
WEB_STOP_S = WEB_DRAIN_S + 1.5  # by then the web tier has answered everything it held
ENDPOINT_STOP_S = 1.0  # left at the end for the endpoint
SCALER_STOP_S = 1.0  # how long a stop waits for the scaler's current tick
LOCAL_LONG_POLL_S = 2  # the local workers' SQS long poll
CALLBACK_FUNCTION = "CallbackFunction"  # the template's callback sender: run only with a webhook secret
FUNCTION_NICENESS = 10  # the face runners yield the cores to the web tier and the workers
SEGMENT_NICENESS = 5  # and a lecture's attendance segments, further, to a new video's first frame


class StackError(RuntimeError):
    """The embedded stack could not start; the message says why and what to do."""


class _NotStarted:
    """A worker asked for while the stack stops: never started, so never alive."""

    alive = False

    def terminate(self) -> None:
        pass

    def wait_or_kill(self, deadline: float) -> None:
        pass


@dataclass
class EmbeddedStack:
    home: Path
    host: str = "127.0.0.1"
    port: int = 8000
    workers: int | None = None  # a fixed fleet size; None: the scaler follows the queue
    web_server: str = "chalice"  # "chalice": chalice's local gateway; "gunicorn": the WSGI adapter
    fresh: bool = False  # start empty: forget what the last run stored
    template: Path = TEMPLATE
    say: Callable[[str], None] = print
    settings: ImageSettings | None = None
    moto: MotoServer | None = None
    web: Child | None = None
    fleet: LocalFleet | None = None
    scaler: Scaler | None = None
    zygote: Zygote | None = None  # forks the workers; None or dead: workers start from scratch
    function_pools: list[FunctionPool] = field(default_factory=list)  # local Lambda instances, per function
    _stopping: threading.Event = field(default_factory=threading.Event)
    _env: dict[str, str] = field(default_factory=dict)
    _scaler_thread: threading.Thread | None = None

    @property
    def url(self) -> str:
        return f"http://{self.host}:{self.port}"

    # ---- start ---------------------------------------------------------------------------

    def start(self) -> ImageSettings:
        if not port_is_free(self.host, self.port):
            raise StackError(f"port {self.port} on {self.host} is in use; choose another with --port")
        (self.home / "logs").mkdir(parents=True, exist_ok=True)
        web_auth = self._web_auth_env()  # a bad IRAAS_API_KEY stops it here, before anything starts
        load_web_limits(os.environ)  # and so does a bad IRAAS_WEB_* limit (the web process reads them)
        faults.from_environ()  # and a bad IRAAS_FAULTS
        os.environ.update(local_credentials_env())  # this process provisions and reads queues too
        os.environ.pop("AWS_PROFILE", None)  # a profile would override the embedded credentials
        aws.reset_clients()

        # Loopback whatever --host says: only this machine's processes talk to the AWS endpoint, which
        # has no authentication of its own (anyone reaching it could read and write every bucket).
        region = os.environ.get("IRAAS_REGION", "us-east-1")
        state = self.home / "state"
        if self.fresh and remove_state(state):
            self.say(f"--fresh: removed what the last run stored ({state / STATE_FILE})")
        self.moto = MotoServer(
            host="127.0.0.1", log_path=self.home / "logs" / "moto.log", state_dir=state, template=self.template,
            region=region, start_timeout_s=ENDPOINT_START_S, env={"IRAAS_HOME": str(self.home)},
        )
        endpoint = self.moto.start()
        self.say(f"AWS endpoint (moto) on {endpoint}; {self._restored()}")
        resources = provision(load_template(self.template), endpoint_url=endpoint, region=region)
        write_stack_file(self.home / "stack.json", endpoint, region, resources, web_url=self.url)
        self.say(f"provisioned {len(resources)} resources from {self.template.name}; see {self.home / 'stack.json'}")
        self.settings = settings = load_image_settings({**os.environ, "IRAAS_HOME": str(self.home)})

        self._ensure_model(settings)
        env = {**os.environ, **local_credentials_env(), **settings_env(settings)}
        env.pop(API_KEY_ENV, None)  # the web tier's alone: workers and functions take no HTTP requests
        # Many small workers share the cores: one inference thread each.
        env.setdefault("IRAAS_ORT_THREADS", "1")
        # A stopping worker finishes its receive first (iraas/images/worker.py): short polls keep a
        # scale-in and the whole stop quick; an empty receive costs the local endpoint about as much
        # CPU as a depth query (1.4 ms in python -m bench.moto_calls).
        env.setdefault("IRAAS_WORKER_LONG_POLL_S", str(LOCAL_LONG_POLL_S))
        # The workers announce each answer on the response queue, which report_results prints
        # (IRAAS_WORKER_ANNOUNCE=0 runs them as on AWS: no lines; bench.worker_cpu does).
        env.setdefault("IRAAS_WORKER_ANNOUNCE", "1")
        # The face function's runners publish their videos and durations for the web tier's GET /metrics.
        env.setdefault("IRAAS_FUNCTION_METRICS", "1")
        self._env = env
        logs = self.home / "logs"
        self.web = Child("web", self._web_command(), logs / "web.log")
        self.web.start({**env, **web_auth}, REPO_ROOT)
        ready = self.home / "ready"
        ready.mkdir(exist_ok=True)
        for marker in ready.iterdir():  # a marker of the last run is not a ready process of this one
            marker.unlink(missing_ok=True)
        self.zygote = Zygote(ready / "zygote", logs / "zygote.log")
        self.zygote.start(env, REPO_ROOT)  # preloads while the rest starts
        self._start_functions(resources, env)
        # AWS runs up to 19 instances; here every worker is a process on this machine's cores.
        scaler_settings = load_scaling_settings({**os.environ, "IRAAS_HOME": str(self.home)})
        scaling = local_scaling(scaler_settings.config, self.workers, os.environ, usable_cores())
        self.fleet = LocalFleet(self._spawn_worker)
        self.scaler = Scaler(
            scaler_settings, self.fleet, scaling.config, capped_by=scaling.capped_by, fast_tick_s=scaling.fast_tick_s
        )
        self.scaler.tick()  # the first workers start now, not one tick later
        return settings

    def _restored(self) -> str:
        """What the endpoint put back from the state folder at its start."""
        state = self.home / "state"
        restored = Restored.load(state)
        if restored is None:
            return f"state kept in {state}"
        if restored == Restored():
            return f"state kept in {state} (empty)"
        return f"restored {restored.describe()} from {state} (--fresh starts empty)"

    def _web_auth_env(self) -> dict[str, str]:
        """``IRAAS_API_KEY`` for the web tier: the user's keys; with none, off loopback, the key kept
        in the stack folder (made the first time): a stack the network can reach never runs open."""
        auth = load_auth_settings(os.environ)
        if auth.required:
            self.say(
                "the API needs a key from IRAAS_API_KEY (x-api-key) on every route but GET /v1/healthz, the page "
                "and GET /openapi.json"
            )
            return {API_KEY_ENV: ",".join(auth.keys)}
        if is_loopback_host(self.host):
            return {}  # this machine only: open, as a development server is
        key, path, made = generated_key(self.home)
        self.say(
            f"{self.host} is reachable beyond this machine and IRAAS_API_KEY is not set: the API needs the key "
            f"{'made now in' if made else 'kept in'} {path} (send it as x-api-key; export IRAAS_API_KEY=$(cat {path}))"
        )
        return {API_KEY_ENV: key}

    def _spawn_worker(self, worker_id: str) -> Process:
        """One local stand-in for an EC2 instance: forked from the zygote, it runs the entry point of
        `iraas worker` (what the instances' systemd unit runs) with the runtime already imported."""
        if self._stopping.is_set():
            return _NotStarted()  # the stack is stopping; the fleet forgets it at its next look
        ready = self.home / "ready" / worker_id
        ready.unlink(missing_ok=True)
        log_path = self.home / "logs" / f"{worker_id}.log"
        if self.zygote is not None:
            try:
                return self.zygote.spawn(worker_id, ready, log_path)
            except ZygoteError as exc:
                self.say(f"{exc}\nstarting workers as new processes from now on")
                self.zygote = None
        return self._start_worker_process(worker_id, ready)

    def _start_worker_process(self, worker_id: str, ready: Path) -> Child:
        """A worker from a fresh interpreter (`iraas worker`), should the zygote fail."""
        child = Child(
            worker_id,
            [sys.executable, "-m", "iraas.cli", "worker", "--ready-file", str(ready)],
            self.home / "logs" / f"{worker_id}.log",
        )
        child.start({**self._env, "IRAAS_WORKER_ID": worker_id}, REPO_ROOT)
        return child

    def _web_command(self) -> list[str]:
        if self.web_server == "gunicorn":
            from iraas.web.gunicorn import gunicorn_command

            return gunicorn_command(self.host, self.port, drain_s=WEB_DRAIN_S)
        return [
            sys.executable, "-m", "iraas.web.server", "--host", self.host, "--port", str(self.port),
            "--drain", str(WEB_DRAIN_S),
        ]

    def _ensure_model(self, settings: ImageSettings) -> None:
        from iraas.images.model.export import ensure_model
        from iraas.images.model.models import is_own_model

        if is_own_model(settings.model):
            from iraas.images.model.runtime import load_classifier

            # A model of one's own is checked whole here, its files and its graph, so that a bad one stops
            # `iraas up` in one line before anything starts, not each worker after. (This process forks
            # no worker: the zygote does.)
            load_classifier(settings.model_dir, threads=1, model=settings.model, runtime=settings.runtime)
            self.say(f"serving a model of your own: {settings.model}")
            return
        # Built once here, so that the workers do not all build it at the same time.
        ensure_model(settings.model_dir, progress=self.say)

    def wait_ready(self, timeout_s: float = 180.0) -> None:
        """Return once a request would succeed: the web tier answers, and with a fixed-size fleet,
        its workers are warm (a scaled fleet starts workers when requests arrive)."""
        _, _, scaler = self._started()
        fleet = self.fleet
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            self._check_web()
            warm = scaler.config.min_workers == 0 or (
                fleet is not None and self._ready_workers([m.id for m in fleet.members()]) >= scaler.config.min_workers
            )
            if self._healthy() and warm:
                return
            time.sleep(0.2)
        raise StackError(f"the stack was not ready within {timeout_s:.0f} s; logs are in {self.home / 'logs'}")

    def _ready_workers(self, worker_ids: list[str]) -> int:
        """How many of these workers have written their ready marker (the model is warm)."""
        return sum((self.home / "ready" / worker_id).exists() for worker_id in worker_ids)

    def _started(self) -> tuple[ImageSettings, Child, Scaler]:
        if self.settings is None or self.web is None or self.scaler is None:
            raise StackError("the stack has not been started")
        return self.settings, self.web, self.scaler

    def _check_web(self) -> None:
        _, web, _ = self._started()
        if not web.alive:
            raise StackError(f"the web tier exited; see {web.log_path}:\n{log_tail(web.log_path)}")

    def _healthy(self) -> bool:
        try:
            with urllib.request.urlopen(f"{self.url}/v1/healthz", timeout=2) as response:
                return response.status == 200
        except OSError:
            return False

    # ---- run -----------------------------------------------------------------------------

    def report_results(self) -> None:
        """Print one line per answered request (the response queue's consumer here)."""
        settings, _, _ = self._started()
        report_results(aws.client(settings, "sqs"), settings.response_queue_url, self.say, self._stopping)

    def supervise(self, stop: threading.Event) -> None:
        """Run the scaler (it also replaces crashed workers) until ``stop``; watch the web tier and
        replace crashed function runners."""
        settings, _, scaler = self._started()
        self._scaler_thread = threading.Thread(target=scaler.run, args=(self._stopping,), name="scaler", daemon=True)
        self._scaler_thread.start()
        swept_at = time.monotonic()
        expire_at = time.monotonic() + lifecycle.FIRST_RUN_AFTER_S
        while not stop.wait(1.0):
            self._check_web()
            self._restart_crashed_endpoint()
            self._replace_crashed_functions()
            if time.monotonic() >= expire_at:
                expire_at = time.monotonic() + lifecycle.EXPIRE_EVERY_S
                self._expire_objects(settings)
            if time.monotonic() - swept_at >= replies.TOUCH_EVERY_S:  # as the sweep_replies schedule does in AWS
                swept_at = time.monotonic()
                try:
                    replies.sweep_idle_reply_queues(settings)
                except Exception as exc:  # noqa: BLE001 - housekeeping: the next minute tries again
                    self.say(f"could not sweep reply queues: {exc}")

    def _expire_objects(self, settings: ImageSettings) -> None:
        """Apply the buckets' lifecycle rules, as S3 does (moto stores them and does nothing)."""
        try:
            expired = lifecycle.expire_buckets(aws.client(settings, "s3"))
        except Exception as exc:  # noqa: BLE001 - housekeeping: the next hour tries again
            self.say(f"could not apply the buckets' lifecycle rules: {exc}")
            return
        for bucket, count in expired.items():
            self.say(f"lifecycle rules expired {count} objects in {bucket}")

    def _restart_crashed_endpoint(self) -> None:
        """The endpoint died under the stack: start it again on its port with its kept state. The
        others wait meanwhile (their AWS calls are retried, their loops back off) and resume."""
        moto = self.moto
        if moto is None or self._stopping.is_set() or moto.exit_status is None:
            return
        started = time.monotonic()
        self.say(f"the AWS endpoint (moto) exited with status {moto.exit_status}; restarting it with its kept state")
        try:
            moto.restart()
        except MotoServerError as exc:
            raise StackError(f"the AWS endpoint could not be restarted: {exc}") from None
        self.say(f"the AWS endpoint is back after {time.monotonic() - started:.1f} s; {self._restored()}")

    def _replace_crashed_functions(self) -> None:
        """Like Lambda, a function instance that died is replaced (each pool does that at its next
        tick; the event it held is redelivered); one that keeps dying at start stops the stack."""
        if self._stopping.is_set():
            return
        try:
            for pool in self.function_pools:
                pool.check()
        except CrashLoop as exc:
            raise StackError(str(exc)) from None

    def _start_functions(self, resources: dict[str, str], env: dict[str, str]) -> None:
        """Runners that invoke the template's functions (the face pipeline; the callback sender when
        there is a webhook secret): for each,
        a pool that follows its event queue's backlog up to the cap (``iraas/local/functions.py``),
        forking warm runners from a zygote that has loaded the handler and its models."""
        from iraas.local.runners import concurrency, idle_s, local_functions

        if self.settings is None:
            raise StackError("the stack has not been started")
        sqs = aws.client(self.settings, "sqs")
        functions = local_functions(load_template(self.template), resources, REPO_ROOT)
        s3_events = {f.logical_id: f.queue_url for f in functions if f.source == "s3"}
        for function in functions:
            if function.logical_id == CALLBACK_FUNCTION and not callbacks_enabled(env):
                continue  # without a webhook secret no request may ask for a callback: nothing to send
            # A lecture's attendance segments (the function's SQS event) yield to its first-frame
            # events (its S3 event): a new video's CSV comes as fast as without attendance.
            first = s3_events.get(function.logical_id) if function.source == "sqs" else None
            pool = FunctionPool(
                function, self.home, env, REPO_ROOT, functools.partial(queue_depth, sqs, function.queue_url),
                cap=concurrency(), idle_s=idle_s(), say=self.say,
                # At a lower priority: the zygote loading the dlib models, or a runner on a video,
                # yields the cores to a burst of images (and a segment's runner to a first frame's).
                niceness=FUNCTION_NICENESS + (SEGMENT_NICENESS if first else 0),
                yields_to=functools.partial(queue_depth, sqs, first) if first else None,
            )
            pool.start()
            self.function_pools.append(pool)

    # ---- stop ----------------------------------------------------------------------------

    def stop(self) -> None:
        """Stop in order within ``STOP_BUDGET_S``: the web tier drains (its waiting requests are
        answered, by the workers still running, or get a 503 with Retry-After), function runners
        finish their video, workers their batch, and the endpoint goes last. What is still queued
        stays in the state folder for the next start."""
        started = time.monotonic()
        self._stopping.set()  # the scaler starts nothing more...
        end = started + STOP_BUDGET_S - ENDPOINT_STOP_S
        if self._scaler_thread is not None:
            # ...once its current tick is over: a tick that saw the first workers exit would replace them.
            self._scaler_thread.join(timeout=SCALER_STOP_S)
        runners: list[Process] = list(self.function_pools)
        for child in [self.web, *runners]:  # a runner finishes the video it is on
            if child is not None:
                child.terminate()
        if self.web is not None:
            self.web.wait_or_kill(min(end, started + WEB_STOP_S))
        if self.fleet is not None:
            self.fleet.shutdown(max(0.5, end - time.monotonic()))  # SIGTERM: each worker finishes its batch
        if self.zygote is not None:
            self.zygote.stop(end)
        for child in runners:
            child.wait_or_kill(end)
        if self.moto is not None:
            self.moto.stop(timeout_s=ENDPOINT_STOP_S)
        remove_stack_file(self.home / "stack.json")


def up(
    home: Path,
    host: str,
    port: int,
    workers: int | None = None,
    say: Callable[[str], None] = print,
    web_server: str = "chalice",
    fresh: bool = False,
) -> int:
    """Run the embedded stack in the foreground until Ctrl-C or SIGTERM."""
    keep_private(home)  # before anything is written: state, logs and key are this user's alone
    stack = EmbeddedStack(
        home=home, host=host, port=port, workers=workers, say=say, web_server=web_server, fresh=fresh
    )
    stop = threading.Event()
    set_title(up_title(f"{host}:{port}"), str(home))

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
        config = stack.scaler.config if stack.scaler else load_scaling_config(os.environ)
        fleet = f"{workers} workers" if workers is not None else f"0-{config.max_workers} workers, scaled"
        if stack.scaler is not None and stack.scaler.capped_by == "cpu":
            fleet += " (one per core; IRAAS_MAX_WORKERS allows more)"
        say(f"IRaaS is ready on {stack.url} ({fleet}; logs in {home / 'logs'}). Ctrl-C stops it.")
        stack.supervise(stop)
        return 0
    except KeyboardInterrupt:
        say("stopping...")
        return 0
    except StackError as exc:
        print(f"iraas up: {exc}", file=sys.stderr, flush=True)
        return 1
    finally:
        # A second Ctrl-C must not cut the orderly stop short; it is bounded by STOP_BUDGET_S.
        signal.signal(signal.SIGINT, signal.SIG_IGN)
        signal.signal(signal.SIGTERM, signal.SIG_IGN)
        # A busy port stops it before anything starts; the stack.json there is another stack's.
        if stack.moto is not None:
            stack.stop()
            say("stopped")
