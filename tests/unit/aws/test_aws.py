"""iraas/aws/__init__.py: the polling loops' wait after failed AWS calls (``Backoff``): doubling,
jittered, capped, cut short by a stop."""

from __future__ import annotations

import random

from iraas.aws import Backoff


def test_the_ceiling_doubles_up_to_the_cap_and_a_success_resets_it() -> None:
    backoff = Backoff(base_s=0.25, cap_s=5.0, _random=random.Random(1))
    ceilings = []
    for _ in range(8):
        ceilings.append(backoff.next_s)
        waited = backoff.sleep(lambda: True)  # stopping: returns at once, but counts the failure
        assert ceilings[-1] / 2 <= waited <= ceilings[-1]
    assert ceilings == [0.25, 0.5, 1.0, 2.0, 4.0, 5.0, 5.0, 5.0]
    backoff.reset()
    assert backoff.next_s == 0.25


def test_a_stop_ends_the_wait_early() -> None:
    calls = []

    def stopping() -> bool:
        calls.append(1)
        return len(calls) > 2

    Backoff(base_s=60.0, cap_s=60.0).sleep(stopping)  # would be 30-60 s; returns after 3 checks
    assert len(calls) == 3
