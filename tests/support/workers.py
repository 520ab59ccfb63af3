"""An app-tier worker polling from a thread of the test process, as an instance would."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from contextlib import contextmanager

from iraas.images.worker import Worker


@contextmanager
def polling_in_background(worker: Worker) -> Iterator[Worker]:
    """Run ``worker.poll_once`` in a loop until the block ends (short polls, so it ends quickly)."""
    stop = threading.Event()

    def loop() -> None:
        while not stop.is_set():
            worker.poll_once(wait_s=1)

    thread = threading.Thread(target=loop, daemon=True)
    thread.start()
    try:
        yield worker
    finally:
        stop.set()
        thread.join(timeout=10)
