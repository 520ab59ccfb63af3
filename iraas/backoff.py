"""How a polling loop waits after its AWS calls failed: exponential, jittered, bounded.

boto3 already retries each call a few times (``iraas/aws.py``); a loop that still gets an error
(the endpoint away for longer, e.g. an embedded endpoint restarting) waits before its next try,
longer each time up to ``cap_s``, so that it neither spins nor stays away long once the endpoint
is back.
"""

from __future__ import annotations

import random
import time
from collections.abc import Callable
from dataclasses import dataclass, field

BASE_S = 0.25
CAP_S = 5.0


@dataclass
class Backoff:
    base_s: float = BASE_S
    cap_s: float = CAP_S
    failures: int = 0
    _random: random.Random = field(default_factory=random.Random, repr=False)

    @property
    def next_s(self) -> float:
        """The ceiling of the next wait: base * 2^failures, at most ``cap_s``."""
        return min(self.cap_s, self.base_s * 2 ** min(self.failures, 16))

    def next_wait(self) -> float:
        """Count a failure; the seconds to wait before the next try: random, between half of
        :attr:`next_s` and all of it (jittered, so that many waiters do not come back at once)."""
        wait_s = self._random.uniform(self.next_s / 2, self.next_s)
        self.failures += 1
        return wait_s

    def sleep(self, stopping: Callable[[], bool] = lambda: False) -> float:
        """Wait :meth:`next_wait`, waking early once ``stopping()``; returns the seconds planned."""
        wait_s = self.next_wait()
        deadline = time.monotonic() + wait_s
        while not stopping() and (left := deadline - time.monotonic()) > 0:
            time.sleep(min(left, 0.1))
        return wait_s

    def reset(self) -> None:
        self.failures = 0
