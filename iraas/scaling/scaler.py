"""The scaler loop: read the queue and the fleet, decide, act, publish the fleet's size."""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable

from iraas import aws
from iraas.queues import queue_depth
from iraas.scaling.fleet import Fleet, Member
from iraas.scaling.policy import Decision, ScalerState, ScalingConfig, WorkerView, decide
from iraas.scaling.settings import ScalingSettings
from iraas.scaling.status import FleetStatus, Heartbeat, S3StatusStore, StatusStore

log = logging.getLogger("iraas.scaler")
STALE_AFTER_S = 10.0  # a heartbeat older than this says nothing about idleness
HEARTBEATS_FRESH_S = 1.0  # workers beat every 2 s: reading them more often tells nothing new
STATUS_REFRESH_S = 30.0  # an unchanged fleet status is published again after this long


def tick_interval(queued: int, running: int, desired: int, tick_s: float, fast_tick_s: float | None) -> float:
    """Seconds until the next tick: ``fast_tick_s`` while a burst is on (requests queued, or fewer
    workers running than desired), ``tick_s`` otherwise. Without ``fast_tick_s`` always ``tick_s``:
    the EC2 scaler runs in Lambda, where every tick costs API calls and a worker takes a minute to
    boot anyway."""
    if fast_tick_s is not None and (queued > 0 or running < desired):
        return min(fast_tick_s, tick_s)
    return tick_s


class Scaler:
    """Each tick: the queue's depth (one SQS call); the workers' heartbeats (on S3, a LIST and a GET
    each) only when the fleet is larger than desired, since only scale-in asks who is idle; and the
    fleet status (an S3 PUT) only when it changed or every ``STATUS_REFRESH_S``.

    ``queued`` (how many requests wait, visible or in flight) and ``store`` default to the stack's
    request queue and output bucket."""

    def __init__(
        self,
        settings: ScalingSettings,
        fleet: Fleet,
        config: ScalingConfig,
        store: StatusStore | None = None,
        queued: Callable[[], int] | None = None,
        clock: Callable[[], float] = time.time,
        capped_by: str = "setting",
        fast_tick_s: float | None = None,
    ) -> None:
        self.settings = settings
        self.fleet = fleet
        self.config = config
        self.store = store or S3StatusStore(aws.client(settings, "s3"), settings.status_bucket)
        self.queued = queued or self._queue_depth
        self.clock = clock
        self.capped_by = capped_by  # where config.max_workers comes from, as GET /v1/stats says
        self.fast_tick_s = fast_tick_s  # tick this often during a burst (None: always tick_s)
        self.state = ScalerState()
        self.last: Decision | None = None
        self.ticks = 0
        self.interval = config.tick_s  # until the next tick, as the last tick decided
        self._beats: dict[str, Heartbeat] = {}
        self._beats_read_at: float | None = None
        self._published: FleetStatus | None = None
        self._published_at: float | None = None

    def _queue_depth(self) -> int:
        return queue_depth(aws.client(self.settings, "sqs"), self.settings.request_queue_url).queued

    def tick(self) -> Decision:
        now = self.clock()
        queued = self.queued()
        members = self.fleet.members()
        # How many workers to run does not depend on who is busy: decide without heartbeats, and
        # read them only when the decision would stop someone (the fleet is larger than desired).
        decision, state = decide(queued, self._views(members, {}, now), now, self.state, self.config)
        if len([m for m in members if not m.stopping]) > decision.desired:
            views = self._views(members, self._heartbeats(now), now)
            decision, state = decide(queued, views, now, self.state, self.config)
        self.state = state
        if decision.launch:
            self.fleet.launch(decision.launch)
        if decision.stop:
            self.fleet.stop(list(decision.stop))
        running = len(members) + decision.launch
        if decision != self.last:
            log.info(
                "queued %d, workers %d -> desired %d (launch %d, stop %s)",
                queued, len(members), decision.desired, decision.launch, list(decision.stop) or "none",
            )
        self.last = decision
        self.ticks += 1
        self._publish(
            FleetStatus(
                running=running, desired=decision.desired, fleet=self.fleet.name,
                max=self.config.max_workers, capped_by=self.capped_by,
            ),
            now,
        )
        self.interval = tick_interval(queued, running, decision.desired, self.config.tick_s, self.fast_tick_s)
        return decision

    def _views(self, members: list[Member], beats: dict[str, Heartbeat], now: float) -> list[WorkerView]:
        views = []
        for member in members:
            beat = beats.get(member.id)
            if beat is not None and now - beat.updated_at > STALE_AFTER_S:
                beat = None  # a stale heartbeat says nothing about idleness
            views.append(
                WorkerView(
                    member.id,
                    busy=beat.busy if beat else False,
                    idle_since=beat.idle_since if beat else None,
                    stopping=member.stopping,
                )
            )
        return views

    def _heartbeats(self, now: float) -> dict[str, Heartbeat]:
        if self._beats_read_at is None or not 0 <= now - self._beats_read_at < HEARTBEATS_FRESH_S:
            self._beats = self.store.heartbeats()
            self._beats_read_at = now
        return self._beats

    def _publish(self, fleet_status: FleetStatus, now: float) -> None:
        fresh = self._published_at is not None and 0 <= now - self._published_at < STATUS_REFRESH_S
        if fresh and fleet_status.same_as(self._published):
            return  # GET /v1/stats would read the same
        self.store.publish(fleet_status)
        self._published, self._published_at = fleet_status, now

    def run(self, stop: threading.Event, seconds: float | None = None) -> None:
        """Tick until ``stop`` is set or ``seconds`` have passed: every ``tick_s``, or every
        ``fast_tick_s`` while a burst is on (see :func:`tick_interval`)."""
        deadline = None if seconds is None else time.monotonic() + seconds
        while not stop.is_set():
            started = time.monotonic()
            try:
                self.tick()
            except Exception:  # noqa: BLE001 - one failed tick must not end scaling
                log.exception("scaler tick failed")
            if deadline is not None and time.monotonic() + self.interval > deadline:
                return
            stop.wait(max(0.0, self.interval - (time.monotonic() - started)))
