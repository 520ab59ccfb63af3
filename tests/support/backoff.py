"""botocore's retry backoff, recorded instead of slept: tests count retries, never time them."""

from __future__ import annotations

import botocore.retries.standard
import pytest


def record_backoff(monkeypatch: pytest.MonkeyPatch) -> list[float]:
    """The jittered delay botocore computes before each retry, appended to the returned list; the
    retry then happens at once."""
    computed: list[float] = []
    original = botocore.retries.standard.ExponentialBackoff.delay_amount

    def record(self, context) -> float:  # noqa: ANN001 - botocore's signature
        computed.append(original(self, context))
        return 0.0

    monkeypatch.setattr(botocore.retries.standard.ExponentialBackoff, "delay_amount", record)
    return computed
