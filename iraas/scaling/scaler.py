"""The scaler loop: read the queue and the fleet, decide, act, publish the fleet's size."""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from typing import Any

from iraas import aws
from iraas.config import Settings
from iraas.queues import queue_depth
from iraas.scaling import heartbeat, status
from iraas.scaling.fleet import Fleet
from iraas.scaling.policy import Decision, ScalerState, ScalingConfig, WorkerView, decide

log = logging.getLogger("iraas.scaler")
STALE_AFTER_S = 10.0  # a heartbeat older than this says nothing about idleness


class Scaler:
    def __init__(
        self,
        settings: Settings,
        fleet: Fleet,
        config: ScalingConfig,
        s3: Any = None,
        sqs: Any = None,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.settings = settings
        self.fleet = fleet
        self.config = config
        self.s3 = s3 or aws.client(settings, "s3")
        self.sqs = sqs or aws.client(settings, "sqs")
        self.clock = clock
        self.state = ScalerState()
        self.last: Decision | None = None
        self.ticks = 0

    def queued(self) -> int:
        return queue_depth(self.sqs, self.settings.request_queue_url).queued

    def tick(self) -> Decision:
        now = self.clock()
        queued = self.queued()
        beats = heartbeat.read_all(self.s3, self.settings.image_output_bucket)
        views = []
        for member in self.fleet.members():
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
        decision, self.state = decide(queued, views, now, self.state, self.config)
        if decision.launch:
            self.fleet.launch(decision.launch)
        if decision.stop:
            self.fleet.stop(list(decision.stop))
        running = len(views) + decision.launch
        if decision != self.last:
            log.info(
                "queued %d, workers %d -> desired %d (launch %d, stop %s)",
                queued, len(views), decision.desired, decision.launch, list(decision.stop) or "none",
            )
        self.last = decision
        self.ticks += 1
        status.publish(
            self.s3,
            self.settings.image_output_bucket,
            status.FleetStatus(running=running, desired=decision.desired, fleet=self.fleet.name),
        )
        return decision

    def run(self, stop: threading.Event, seconds: float | None = None) -> None:
        """Tick every ``tick_s`` until ``stop`` is set or ``seconds`` have passed."""
        deadline = None if seconds is None else time.monotonic() + seconds
        while not stop.is_set():
            started = time.monotonic()
            try:
                self.tick()
            except Exception:  # noqa: BLE001 - one failed tick must not end scaling
                log.exception("scaler tick failed")
            if deadline is not None and time.monotonic() + self.config.tick_s > deadline:
                return
            stop.wait(max(0.0, self.config.tick_s - (time.monotonic() - started)))
