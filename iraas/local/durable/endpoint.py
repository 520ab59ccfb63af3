"""The endpoint side: provision, restore, then commit every request's changes before it answers."""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from iraas.local.durable import STATE_FILE
from iraas.local.durable.capture import Capture, Scope, current_scope, install
from iraas.local.durable.restore import Restored, restore
from iraas.local.durable.store import StateStore

log = logging.getLogger(__name__)

FLUSH_EVERY_S = 1.0  # the most a power cut can take (a process crash takes nothing answered)

WsgiApp = Callable[[dict[str, Any], Callable[..., Any]], Iterable[bytes]]


@dataclass
class DurableEndpoint:
    store: StateStore
    capture: Capture
    restored: Restored
    restore_s: float

    def wrap(self, app: WsgiApp) -> WsgiApp:
        """``app`` with each request's changes committed before its response is sent."""
        capture = self.capture

        def durable_app(environ: dict[str, Any], start_response: Callable[..., Any]) -> Iterable[bytes]:
            try:
                return app(environ, start_response)
            finally:  # werkzeug sends the status line only once the body is iterated: after this
                capture.sync()

        return durable_app

    def flush_forever(self) -> None:
        while True:
            time.sleep(FLUSH_EVERY_S)
            try:
                self.store.flush()
            except Exception as exc:  # noqa: BLE001 - a failed checkpoint is retried next second
                log.warning("could not checkpoint %s: %s", self.store.path, exc)

    def start_flushing(self) -> None:
        threading.Thread(target=self.flush_forever, name="state-flush", daemon=True).start()


def open_endpoint_state(state_dir: Path, provision_resources: Callable[[], None], region: str) -> DurableEndpoint:
    """Provision (``provision_resources`` runs against moto's in-process backends), restore the
    stored data into them, and start capturing changes."""
    started = time.monotonic()
    store = StateStore(state_dir / STATE_FILE)
    provision_resources()
    scope: Scope = current_scope(region)
    restored, ids = restore(store, scope)
    capture = Capture(store, scope, stored=ids)
    install(capture)
    return DurableEndpoint(store, capture, restored, time.monotonic() - started)
