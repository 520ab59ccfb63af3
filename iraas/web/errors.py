"""Errors as the web tier answers them: the one place a domain error gets its HTTP status.

Use cases raise :class:`iraas.errors.ServiceError` subclasses in their own words; the routes
(``chalice_web/chalicelib/responses.py``), the auth middleware and the WSGI adapter all answer
through :func:`http_error`, so an error's status, JSON body and headers are the same everywhere:
``{"error": {"code", "message"}}`` plus the error's details (an accepted request's id).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from iraas.errors import InvalidRequest, NotConfigured, NotFound, ServiceError, TooLarge, UnsupportedMediaType


class Unauthorized(ServiceError):
    """A keyed route called without a key."""


class Forbidden(ServiceError):
    """A keyed route called with a key the service does not accept."""


class LengthRequired(InvalidRequest):
    """A body the server cannot frame: chalice's local server reads ``Content-Length`` only, so a
    chunked body there is refused rather than taken for the next request."""


class Unavailable(ServiceError):
    """Not now, later: a web process that is stopping, storage that throttles. ``retry_after_s`` is
    sent as ``Retry-After``."""

    def __init__(self, code: str, message: str, retry_after_s: int, **details: Any) -> None:
        super().__init__(code, message, **details)
        self.retry_after_s = retry_after_s


# Each error type's status; a subclass answers its nearest listed ancestor's.
STATUS: dict[type[ServiceError], int] = {
    InvalidRequest: 400,
    Unauthorized: 401,
    Forbidden: 403,
    NotFound: 404,
    LengthRequired: 411,
    TooLarge: 413,
    UnsupportedMediaType: 415,
    NotConfigured: 503,
    Unavailable: 503,
}


# On every answer: a browser takes its Content-Type as it is (a CSV or a label is never run as a
# script), and nothing that carries a user's data is kept by a cache; the page's own files say theirs.
PRIVATE_HEADERS = {"X-Content-Type-Options": "nosniff", "Cache-Control": "no-store"}


@dataclass(frozen=True)
class HttpError:
    status: int
    body: dict[str, Any]
    headers: dict[str, str] = field(default_factory=dict)


def error_body(code: str, message: str, **details: Any) -> dict[str, Any]:
    """``{"error": {"code", "message"}}``, the details beside it."""
    return {**details, "error": {"code": code, "message": message}}


def http_error(exc: ServiceError) -> HttpError:
    """The status, JSON body and headers that answer ``exc``."""
    status = next((STATUS[cls] for cls in type(exc).__mro__ if cls in STATUS), 500)
    headers = {"Retry-After": str(exc.retry_after_s)} if isinstance(exc, Unavailable) else {}
    if isinstance(exc, Unauthorized):
        headers["WWW-Authenticate"] = 'ApiKey header="x-api-key"'
    return HttpError(status, error_body(exc.code, exc.message, **exc.details), headers)


INTERNAL = HttpError(500, error_body("internal", "internal error"))
UNAVAILABLE_RETRY_AFTER_S = 2
# An AWS call failed after boto3's bounded retries (iraas.aws.is_unavailable): nothing was accepted.
STORAGE_UNAVAILABLE = Unavailable(
    "unavailable", "storage or queue unreachable or throttling; nothing was accepted, try again",
    retry_after_s=UNAVAILABLE_RETRY_AFTER_S,
)
