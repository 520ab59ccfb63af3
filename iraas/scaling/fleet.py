"""What the scaler needs from a fleet of workers, wherever they run."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol


@dataclass(frozen=True)
class Member:
    id: str  # the worker id its heartbeat uses (EC2 instance id, or local-N)
    stopping: bool = False


class Fleet(Protocol):
    name: str

    def members(self) -> list[Member]:
        """Workers that exist now (launching, running, or finishing their last batch)."""

    def launch(self, count: int) -> list[str]:
        """Start ``count`` workers; returns their ids."""

    def stop(self, ids: list[str]) -> None:
        """Ask these workers to stop after their current batch."""
