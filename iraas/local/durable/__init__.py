"""Durable state for the embedded endpoint: what users stored survives a restart or a crash.

moto keeps everything in memory. ``python -m iraas.local.moto_app --state DIR`` keeps the data of
the template's resources (both buckets' objects, the students table, the queues' messages) in
``DIR/endpoint.sqlite`` as well: at start it provisions the template in-process, puts the stored
data back and only then listens, so that no client ever sees the endpoint half restored; while
it serves, every request's changes are committed before its answer leaves (``capture.py``).

Why a state file of the data, not a journal of requests replayed into a fresh moto: a journal
grows with every call (a queue's message is sent, received and deleted; a worker's heartbeat is
rewritten every few seconds) and needs compaction, and replaying receives and deletes cannot work
(receipt handles are random). The state file holds exactly what exists now, so its size is the
data's size and a restore is one pass over it. Control-plane state (buckets, queues, their
policies and notifications, the table) is not kept: it is provisioned again from the template.
A message's receive count is kept (a dead-letter queue's maxReceiveCount holds across restarts).
Not kept: in-flight visibility (restored messages are visible at once, as after a visibility
timeout; the workers' conditional result writes keep answers single), object versions and tags,
and other buckets, tables or queues created on the endpoint by hand.
"""

from __future__ import annotations

import dataclasses
import json
from dataclasses import dataclass
from pathlib import Path

__all__ = ["STATE_FILE", "Restored", "remove_state"]

STATE_FILE = "endpoint.sqlite"  # in the state folder; iraas/local/durable/endpoint.py opens it
LAST_RESTORE = "last-restore.json"  # what the endpoint put back at its last start, for iraas up to say


@dataclass(frozen=True)
class Restored:
    objects: int = 0
    items: int = 0
    messages: int = 0
    dropped: int = 0  # kept for a bucket, table or queue the template no longer has

    def describe(self) -> str:
        text = f"{self.objects} objects, {self.items} table items, {self.messages} queued messages"
        return text + (f" ({self.dropped} of resources no longer in the template left out)" if self.dropped else "")

    def save(self, state_dir: Path, seconds: float) -> None:
        (state_dir / LAST_RESTORE).write_text(json.dumps({**dataclasses.asdict(self), "seconds": round(seconds, 3)}))

    @classmethod
    def load(cls, state_dir: Path) -> Restored | None:
        """The last start's counts; None if there is no readable record."""
        try:
            saved = json.loads((state_dir / LAST_RESTORE).read_text())
            return cls(**{f.name: int(saved[f.name]) for f in dataclasses.fields(cls)})
        except (OSError, ValueError, KeyError, TypeError):
            return None


def remove_state(state_dir: Path) -> bool:
    """Delete the state file (``iraas up --fresh``); True if there was one."""
    found = False
    for suffix in ("", "-wal", "-shm"):
        path = state_dir / f"{STATE_FILE}{suffix}"
        if path.exists():
            path.unlink()
            found = True
    return found
