"""What can go wrong, in the service's own words: a bad setting, a command-line user's mistake, and
the domain errors a use case raises for a caller's request.

A domain error carries a ``code`` a client can test (``not_an_image``, ``not_found``) and a message
for a person, never an HTTP status: the web tier maps each type to its status in one place
(``iraas/web/errors.py``), and the CLI prints the message.
"""

from __future__ import annotations

from typing import Any


class ConfigError(ValueError):
    """A setting is missing or out of range; raised at start-up, never mid-request."""


class UsageError(Exception):
    """A command-line user's mistake (a missing file, an empty folder, a service that is not
    there): ``iraas`` prints ``iraas <command>: <message>`` in one line and exits with 2."""


class ServiceError(Exception):
    """A request the service cannot carry out, and why: ``code`` for programs, ``message`` for people.

    ``details`` are more facts a client may need (the id of a request that was accepted), shown
    beside the error.
    """

    def __init__(self, code: str, message: str, **details: Any) -> None:
        super().__init__(message)
        self.code = code
        self.message = message
        self.details = details


class InvalidRequest(ServiceError):
    """The request itself is wrong: a malformed body or parameter, content that is not what the
    use case takes (an image that is not one, a students list that does not parse)."""


class NotFound(ServiceError):
    """Nothing the caller may see has that name or id (another caller's looks the same)."""


class TooLarge(ServiceError):
    """The request is over one of the service's stated limits (bytes, pixels, records)."""


class UnsupportedMediaType(ServiceError):
    """The body's declared type is not one the use case reads."""


class NotConfigured(ServiceError):
    """The deployment lacks a resource the use case needs (the classroom on an image-only stack)."""

    def __init__(self, message: str) -> None:
        super().__init__("not_configured", message)
