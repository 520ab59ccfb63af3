"""The kinds of error the deployables tell apart: a bad setting, a client's mistake over HTTP, and a
command-line user's mistake."""

from __future__ import annotations

from typing import Any


class ConfigError(ValueError):
    """A setting is missing or out of range; raised at start-up, never mid-request."""


class ApiError(Exception):
    """An error the client caused; shaped as ``{"error": {"code", "message"}}`` with ``status``."""

    def __init__(self, status: int, code: str, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.code = code
        self.message = message

    def body(self) -> dict[str, Any]:
        return {"error": {"code": self.code, "message": self.message}}


class UsageError(Exception):
    """A command-line user's mistake (a missing file, an empty folder, a service that is not
    there): ``iraas`` prints ``iraas <command>: <message>`` in one line and exits with 2."""
