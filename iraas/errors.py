"""The kinds of error the deployables tell apart: a bad setting, a client's mistake over HTTP, and a
command-line user's mistake."""

from __future__ import annotations

from typing import Any


class ConfigError(ValueError):
    """A setting is missing or out of range; raised at start-up, never mid-request."""


class ApiError(Exception):
    """An error the client caused; shaped as ``{"error": {"code", "message"}}`` with ``status``."""

    def __init__(
        self, status: int, code: str, message: str, retry_after_s: int | None = None,
        extra: dict[str, Any] | None = None,
    ) -> None:
        super().__init__(message)
        self.status = status
        self.code = code
        self.message = message
        self.retry_after_s = retry_after_s  # sent as Retry-After (a 503 the client should retry)
        self.extra = extra or {}  # more top-level fields, e.g. the id of a request that was accepted

    def body(self) -> dict[str, Any]:
        return {**self.extra, "error": {"code": self.code, "message": self.message}}

    def headers(self) -> dict[str, str]:
        return {} if self.retry_after_s is None else {"Retry-After": str(self.retry_after_s)}


class UsageError(Exception):
    """A command-line user's mistake (a missing file, an empty folder, a service that is not
    there): ``iraas`` prints ``iraas <command>: <message>`` in one line and exits with 2."""


def is_unavailable(exc: BaseException) -> bool:
    """Whether an AWS call failed for a reason that passes (unreachable endpoint, throttling, a
    5xx), once boto3's own bounded retries are spent: the caller should try again later. The same
    test botocore's standard retry mode applies (its throttling and transient checkers), also to an
    error raised from one of these (a send that failed) or marked ``unavailable``."""
    from types import SimpleNamespace

    from botocore.exceptions import ClientError
    from botocore.retries.standard import RetryContext, ThrottledRetryableChecker, TransientRetryableChecker

    checkers = (ThrottledRetryableChecker(), TransientRetryableChecker())
    current: BaseException | None = exc
    while current is not None:
        if getattr(current, "unavailable", False):
            return True
        if isinstance(current, ClientError):
            status = current.response.get("ResponseMetadata", {}).get("HTTPStatusCode")
            context = RetryContext(attempt_number=1, parsed_response=current.response,
                                   http_response=SimpleNamespace(status_code=status))
        else:
            context = RetryContext(attempt_number=1, caught_exception=current)
        if any(checker.is_retryable(context) for checker in checkers):
            return True
        current = current.__cause__
    return False
