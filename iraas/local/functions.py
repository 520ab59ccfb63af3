"""Local Lambda concurrency: a function's runners follow its event queue's backlog.

Lambda runs one event per execution environment and adds environments as events queue up; idle
ones are reclaimed later. Locally each environment is a runner process
(:mod:`iraas.local.lambda_runner`), and :class:`FunctionPool` keeps as many as the queue asks for:

- **up with the backlog**: every tick it reads the event queue's depth (visible events plus those
  in flight) and starts runners until there is one per event, up to ``cap``
  (``IRAAS_LOCAL_FUNCTION_CONCURRENCY``, by default one per usable core: past that they would only
  share the cores);
- **warm**: runners are forked from a zygote (:mod:`iraas.local.zygote`, entry
  :func:`iraas.local.lambda_runner.preforked`) that has imported the handler and loaded and warmed
  up the face models once, so a new runner takes events within milliseconds. The zygote and so
  every runner run at a lower priority (``nice``), so that neither the models' loading at start
  nor a video takes the cores from a burst of images. Should the zygote keep failing, runners
  start as fresh processes (``python -m iraas.local.lambda_runner``, each with its own cold start);
- **second in line**: a pool that ``yields_to`` another queue (a lecture's attendance segments yield
  to the first-frame events of new videos, so that a CSV comes as fast as without attendance) runs
  nothing of its own backlog while that queue has events and for ``YIELD_SETTLE_S`` after: its
  runners are retired (each finishes the event it is on), none is started, not even a warm one, and
  it looks at the queues at its idle pace (once a second, not four times, and at the other queue only
  when its own has events); its runners run at a lower priority still. Lowering their priority alone
  was not enough: a segment's runner at ``nice`` 15 still made 100 course-style uploads' CSVs 55%
  slower (33 s against 21 s, ``bench.faces_at_scale``), through the AWS calls it makes, which the
  endpoint serves at its own priority;
- **down when idle**: once the backlog has stayed below the runners for ``idle_s``
  (``IRAAS_LOCAL_FUNCTION_IDLE_S``, 10 s), the extra runners get SIGTERM (each finishes the event it
  is on); one stays warm, so a lone video never pays a cold start;
- **crashes**: a runner that dies is replaced at the next tick (its event comes back after the
  queue's visibility timeout); one that keeps dying at start is a :class:`CrashLoop`, which
  ``iraas up`` reports with the runner's log and stops on. A zygote that dies is started again.

Every runner still reads the enrolments for each video (the handler reads the table per event).
"""

from __future__ import annotations

import logging
import shutil
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from iraas.local.runners import LocalFunction
from iraas.local.supervisor import MAX_QUICK_EXITS, QUICK_EXIT_S, Child, CrashLoop, log_tail
from iraas.local.zygote import Zygote, ZygoteError
from iraas.queues import QueueDepth
from iraas.scaling.local import Process

log = logging.getLogger("iraas.local.functions")

WARM_RUNNERS = 1  # kept however idle the queue is
FAST_TICK_S = 0.1  # while events wait or runners are starting
IDLE_TICK_S = 0.25  # one GetQueueAttributes call a tick: about 1% of a core for moto
# A pool second in line looks at two queues a tick, and its work can wait: at this pace it adds
# no AWS call to an image's budget that bench.service counts (it added 0.2 per image at IDLE_TICK_S).
SECOND_IN_LINE_IDLE_TICK_S = 1.0
JOIN_S = 2.0  # how long a stop waits for the pool's current tick
YIELD_SETTLE_S = 1.0  # a yielding pool waits this long after the other queue's last event (uploads come in bursts)
PREFORKED = "iraas.local.lambda_runner:preforked"

Depth = Callable[[], QueueDepth]  # the event queue's depth (iraas.queues.queue_depth)


def desired_runners(visible: int, in_flight: int, cap: int, warm: int = WARM_RUNNERS) -> int:
    """One runner per event waiting or being worked on, at least ``warm``, at most ``cap``."""
    return max(min(warm, cap), min(cap, visible + in_flight))


@dataclass
class Runner:
    name: str
    slot: int  # names are <function>-<slot>, the lowest free slot, so logs are reused
    process: Process
    ready_file: Path
    log_path: Path
    started_at: float
    forked: bool
    retiring: bool = False  # sent SIGTERM by the pool: it finishes its event, then exits
    ready_ms: float | None = None  # from the start to its ready file, once seen


class FunctionPool:
    """The runners of one function; ``terminate`` + ``wait_or_kill`` stop it (a ``Process``)."""

    def __init__(
        self,
        function: LocalFunction,
        home: Path,
        env: dict[str, str],
        cwd: Path,
        depth: Depth,
        cap: int,
        idle_s: float,
        say: Callable[[str], None] = print,
        niceness: int = 0,
        use_zygote: bool = True,
        warm: int = WARM_RUNNERS,
        yields_to: Depth | None = None,
    ) -> None:
        self.function, self.home, self.env, self.cwd = function, home, env, cwd
        self.depth, self.cap, self.idle_s, self.say = depth, max(1, cap), idle_s, say
        self.niceness, self.warm = niceness, warm
        self.yields_to = yields_to  # another queue whose events go first: add no runner while it has any
        self.runners: list[Runner] = []
        self.started: list[Runner] = []  # every runner seen ready, for the figures (bounded)
        self.failure: CrashLoop | None = None
        self.zygote: Zygote | None = None
        if use_zygote:
            name = function.name
            self.zygote = Zygote(
                home / "ready" / f"{name}-zygote", home / "logs" / f"{name}-zygote.log",
                entry=PREFORKED, options=function.zygote_options(), niceness=niceness,
                label=f"{name} zygote",
            )
        self._zygote_failures = 0  # deaths in a row before it was ready
        self._quick_exits = 0  # runner deaths in a row soon after their start
        self._low_since: float | None = None  # since when the backlog is below the runners
        self._other_busy_at: float | None = None  # when the queue this pool yields to last had events
        self._stopping = threading.Event()
        self._lock = threading.Lock()
        self._thread: threading.Thread | None = None

    # ---- lifecycle ----------------------------------------------------------------------------

    def start(self) -> None:
        """Start the zygote (it preloads in the background) and the pool's thread."""
        if self.zygote is not None:
            self.zygote.start(self.env, self.cwd)
        self._thread = threading.Thread(target=self._run, name=f"{self.function.name}-pool", daemon=True)
        self._thread.start()

    def check(self) -> None:
        """Raise the pool's CrashLoop, if a runner keeps dying at start."""
        if self.failure is not None:
            raise self.failure

    @property
    def alive(self) -> bool:
        return self._thread is not None and self._thread.is_alive()

    def terminate(self) -> None:
        """Start nothing more; SIGTERM every runner (each finishes the event it is on)."""
        self._stopping.set()
        if self._thread is not None:
            self._thread.join(timeout=JOIN_S)
        with self._held():
            for runner in self.runners:
                runner.process.terminate()

    def wait_or_kill(self, deadline: float) -> None:
        with self._held():
            runners = list(self.runners)
        for runner in runners:
            runner.process.wait_or_kill(deadline)
            runner.ready_file.unlink(missing_ok=True)
        if self.zygote is not None:
            self.zygote.stop(deadline)

    def _held(self) -> _Held:
        return _Held(self._lock)

    # ---- the loop -----------------------------------------------------------------------------

    def _run(self) -> None:
        busy = True
        idle_tick_s = IDLE_TICK_S if self.yields_to is None else SECOND_IN_LINE_IDLE_TICK_S
        while not self._stopping.wait(FAST_TICK_S if busy else idle_tick_s):
            try:
                with self._lock:
                    if self._stopping.is_set():
                        return
                    busy = self.tick()
            except CrashLoop as exc:
                self.failure = exc  # iraas up stops with it at its next check
                return
            except Exception:  # noqa: BLE001 - the next tick tries again
                log.exception("%s: a tick of the pool failed", self.function.name)
                busy = False

    def tick(self, now: float | None = None) -> bool:
        """Reap, replace, scale to the backlog. Returns whether to look again soon."""
        now = time.monotonic() if now is None else now
        self._reap(now)
        self._check_zygote()
        starting = False
        for runner in self.runners:
            if runner.ready_ms is None:
                if runner.ready_file.exists():
                    runner.ready_ms = (now - runner.started_at) * 1000
                    self.started = [*self.started[-99:], runner]
                    log.debug("%s ready in %.0f ms (%s)", runner.name, runner.ready_ms,
                              "forked" if runner.forked else "spawned")
                else:
                    starting = True
        if self.zygote is not None and not self.zygote.ready:
            return True  # preloading (or restarting): runners are forked once it is ready
        active = [r for r in self.runners if not r.retiring]
        depth = self.depth()
        # The other queue matters only when this one has work: an idle warm runner takes no CPU.
        if depth.visible + depth.in_flight > 0 and self._yielding(now):
            for runner in active:  # each finishes the event it is on; nothing new is taken
                runner.retiring = True
                runner.process.terminate()
            self._low_since = None
            return starting
        visible = depth.visible
        desired = desired_runners(depth.visible, depth.in_flight, self.cap, self.warm)
        if desired > len(active):
            self._low_since = None
            for _ in range(desired - len(active)):
                self._spawn(now)
            return True
        if desired < len(active):
            if self._low_since is None:
                self._low_since = now
            elif now - self._low_since >= self.idle_s:
                self._low_since = None
                for runner in sorted(active, key=lambda r: (r.started_at, r.slot), reverse=True)[: len(active) - desired]:
                    runner.retiring = True  # the newest first: the oldest stays warm
                    runner.process.terminate()
        else:
            self._low_since = None
        return starting or visible > 0

    def _yielding(self, now: float) -> bool:
        """Whether the queue this pool yields to has events, or had some within ``YIELD_SETTLE_S``."""
        if self.yields_to is None:
            return False
        other = self.yields_to()
        if other.visible + other.in_flight > 0:
            self._other_busy_at = now
        return self._other_busy_at is not None and now - self._other_busy_at < YIELD_SETTLE_S

    # ---- runners ------------------------------------------------------------------------------

    def _spawn(self, now: float) -> None:
        used = {r.slot for r in self.runners}
        slot = next(n for n in range(len(used) + 1) if n not in used)
        name = f"{self.function.name}-{slot}"
        ready = self.home / "ready" / name
        ready.unlink(missing_ok=True)
        log_path = self.home / "logs" / f"{name}.log"
        process: Process | None = None
        if self.zygote is not None:
            try:
                process = self.zygote.spawn(name, ready, log_path)
            except ZygoteError as exc:
                log.warning("%s", exc)
                self.zygote.stop(time.monotonic() + JOIN_S)
                self._zygote_died(ready_before=False)  # started again (or given up on)
                return
        forked = process is not None
        if process is None:
            nice = shutil.which("nice") if self.niceness else None
            prefix = [nice, "-n", str(self.niceness)] if nice else []  # nice(1) execs: the pid is the runner's
            child = Child(name, [*prefix, *self.function.command(ready)], log_path)
            child.start(self.env, self.cwd)
            process = child
        self.runners.append(Runner(name, slot, process, ready, log_path, now, forked))

    def _reap(self, now: float) -> None:
        for runner in [r for r in self.runners if not r.process.alive]:
            self.runners.remove(runner)
            runner.ready_file.unlink(missing_ok=True)
            if runner.retiring or self._stopping.is_set():
                continue
            quick = now - runner.started_at < QUICK_EXIT_S
            self._quick_exits = self._quick_exits + 1 if quick else 0
            if self._quick_exits >= MAX_QUICK_EXITS:
                raise CrashLoop(
                    f"{runner.name} exits at start; see {runner.log_path}:\n{log_tail(runner.log_path)}"
                )
            code = runner.process.process.returncode if isinstance(runner.process, Child) and runner.process.process else None
            status = f" (status {code})" if code is not None else ""
            self.say(f"{runner.name} exited{status}; starting a new one")

    def _check_zygote(self) -> None:
        zygote = self.zygote
        if zygote is None or zygote.alive:
            return
        ready_before = zygote.ready_file.exists()
        zygote.stop(time.monotonic() + JOIN_S)  # reaps it
        self._zygote_died(ready_before)

    def _zygote_died(self, ready_before: bool) -> None:
        zygote = self.zygote
        assert zygote is not None
        self._zygote_failures = 0 if ready_before else self._zygote_failures + 1
        if self._zygote_failures >= MAX_QUICK_EXITS:
            self.say(
                f"the {zygote.label} exits at start; see {zygote.log_path}:\n{log_tail(zygote.log_path)}\n"
                "starting runners as new processes from now on"
            )
            self.zygote = None
            return
        code = zygote.process.returncode if zygote.process is not None else None
        self.say(f"the {zygote.label} exited (status {code}); starting a new one")
        zygote.start(self.env, self.cwd)


class _Held:
    """The pool's lock, taken for a stop: waited for a while, then done without (never hangs)."""

    def __init__(self, lock: threading.Lock) -> None:
        self._lock, self._got = lock, False

    def __enter__(self) -> None:
        self._got = self._lock.acquire(timeout=JOIN_S)

    def __exit__(self, *_exc: object) -> None:
        if self._got:
            self._lock.release()
