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


# Codes AWS answers when it is overloaded or briefly unable to serve (besides any 5xx status).
_THROTTLING_CODES = frozenset({
    "SlowDown", "Throttling", "ThrottlingException", "ThrottledException", "RequestThrottled",
    "RequestThrottledException", "RequestLimitExceeded", "TooManyRequestsException",
    "ProvisionedThroughputExceededException", "RequestTimeout", "ServiceUnavailable",
})


def is_unavailable(exc: BaseException) -> bool:
    """Whether an AWS call failed for a reason that passes (unreachable endpoint, throttling, a
    5xx), once boto3's own bounded retries are spent: the caller should try again later."""
    from botocore.exceptions import ClientError, HTTPClientError
    from botocore.exceptions import ConnectionError as EndpointUnreachable

    current: BaseException | None = exc
    while current is not None:  # also an error raised from one of these (a send that failed)
        if getattr(current, "unavailable", False) or isinstance(current, (EndpointUnreachable, HTTPClientError)):
            return True  # refused, dropped, timed out
        if isinstance(current, ClientError):
            error = current.response.get("Error", {})
            status = current.response.get("ResponseMetadata", {}).get("HTTPStatusCode", 0)
            return error.get("Code") in _THROTTLING_CODES or int(status or 0) >= 500
        current = current.__cause__
    return False
