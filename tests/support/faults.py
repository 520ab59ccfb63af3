"""Setting IRAAS_FAULTS for the clients a test makes next (iraas/aws/faults.py's tests)."""

from __future__ import annotations

from collections.abc import Callable

import pytest

from iraas import aws
from iraas.aws import faults


def fault_setter(monkeypatch: pytest.MonkeyPatch) -> Callable[..., None]:
    """``set_faults(value, seed=None)``: sets (or, with None, clears) IRAAS_FAULTS and its seed, and
    forgets the cached clients, so that clients made afterwards carry the faults (with no counts)."""
    monkeypatch.delenv(faults.SEED_ENV, raising=False)

    def set_faults(value: str | None, seed: int | None = None) -> None:
        if value is None:
            monkeypatch.delenv(faults.FAULTS_ENV, raising=False)
        else:
            monkeypatch.setenv(faults.FAULTS_ENV, value)
        if seed is not None:
            monkeypatch.setenv(faults.SEED_ENV, str(seed))
        aws.reset_clients()

    return set_faults
