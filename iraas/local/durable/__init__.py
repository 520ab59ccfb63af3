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
Not kept: in-flight visibility (restored messages are visible at once, as after a visibility
timeout; the workers' conditional result writes keep answers single), receive counts beyond the
one stored with a message, object versions and tags, and other buckets, tables or queues created
on the endpoint by hand.
"""

from __future__ import annotations

from pathlib import Path

__all__ = ["STATE_FILE", "remove_state"]

STATE_FILE = "endpoint.sqlite"  # in the state folder; iraas/local/durable/endpoint.py opens it


def remove_state(state_dir: Path) -> bool:
    """Delete the state file (``iraas up --fresh``); True if there was one."""
    found = False
    for suffix in ("", "-wal", "-shm"):
        path = state_dir / f"{STATE_FILE}{suffix}"
        if path.exists():
            path.unlink()
            found = True
    return found
