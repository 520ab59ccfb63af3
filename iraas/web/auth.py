"""API keys: who may call the web tier. One check for ``iraas up``, gunicorn and ``chalice local``.

The key travels in ``x-api-key``, the header API Gateway reads. ``IRAAS_API_KEY`` holds the keys
the web tier accepts, comma-separated, so that a key can be rotated: add the new one, move the
clients, drop the old. Keys are compared in constant time and never logged or echoed in a message.

Behind API Gateway (on Lambda, with no ``IRAAS_API_KEY``) the gateway checks the key against its
usage plan; the web tier then only insists that a keyed route arrived with the id of the key the
gateway accepted, so that an API deployed without its key requirement fails closed, not open.
"""

from __future__ import annotations

import hashlib
import hmac
import os
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from iraas.config import flag
from iraas.errors import ConfigError
from iraas.web.errors import Forbidden, Unauthorized

API_KEY_HEADER = "x-api-key"
API_KEY_ENV = "IRAAS_API_KEY"
OPEN_COURSE_ENDPOINT_ENV = "IRAAS_OPEN_COURSE_ENDPOINT"
# Shorter is guessable (the OpenStack deploy, iraas/hybrid/plan.py, asks the same); a generated key has 43.
MIN_KEY_CHARS, MAX_KEY_CHARS = 16, 256
_KEY_CHARS = re.compile(r"[!-+\--~]+")  # printable ASCII without space and comma (the separator)


@dataclass(frozen=True)
class AuthSettings:
    """The keys the web tier accepts (none: it answers everyone), and whether POST / is open."""

    keys: tuple[str, ...] = field(default=(), repr=False)  # repr=False: never in a log or a traceback
    open_course_endpoint: bool = False

    @property
    def required(self) -> bool:
        return bool(self.keys)


def load_auth_settings(env: Mapping[str, str] | None = None) -> AuthSettings:
    """``IRAAS_API_KEY`` and ``IRAAS_OPEN_COURSE_ENDPOINT``, checked; ConfigError names the variable
    (and which key is wrong, by position, never by value)."""
    env = os.environ if env is None else env
    return AuthSettings(
        keys=parse_keys(env.get(API_KEY_ENV, "")),
        open_course_endpoint=flag(env, OPEN_COURSE_ENDPOINT_ENV),
    )


def parse_keys(raw: str) -> tuple[str, ...]:
    """The comma-separated keys of ``raw`` (blank: none)."""
    if not raw.strip():
        return ()
    keys = tuple(part.strip() for part in raw.split(","))
    for position, key in enumerate(keys, 1):
        where = f"{API_KEY_ENV}: key {position} of {len(keys)}"
        if not key:
            raise ConfigError(f"{where} is empty (two commas, or one at an end?)")
        if not MIN_KEY_CHARS <= len(key) <= MAX_KEY_CHARS:
            raise ConfigError(
                f"{where} has {len(key)} characters; a key has {MIN_KEY_CHARS} to {MAX_KEY_CHARS} "
                "(`python -c 'import secrets; print(secrets.token_urlsafe(32))'` makes one)"
            )
        if not _KEY_CHARS.fullmatch(key):
            raise ConfigError(f"{where} has a character that is not printable ASCII (or is a space)")
    return keys


def _digest(value: str) -> bytes:
    # Equal-length digests: compare_digest's time then says nothing about a key's length either.
    return hashlib.sha256(value.encode("utf-8", "surrogatepass")).digest()


def key_matches(given: str, keys: tuple[str, ...]) -> bool:
    """Whether ``given`` is one of ``keys``; every key is compared, each in constant time."""
    given_digest = _digest(given)
    found = False
    for key in keys:
        found |= hmac.compare_digest(given_digest, _digest(key))
    return found


def missing_key() -> Unauthorized:
    return Unauthorized("unauthorized", f"this route needs an API key in the {API_KEY_HEADER} header")


def wrong_key() -> Forbidden:
    return Forbidden("forbidden", f"the API key in the {API_KEY_HEADER} header is not valid")


# The course-compatible route, which IRAAS_OPEN_COURSE_ENDPOINT (the template's OpenCourseEndpoint)
# leaves open for a grader's client that sends no key.
COURSE_ROUTE = ("/", "POST")


def route_needs_key(settings: AuthSettings, route: str, method: str, api_key_required: bool | None) -> bool:
    """Whether a request to ``route`` (its pattern) by ``method`` must pass :func:`check_request`.

    Every route does but those that say ``api_key_required=False``; a route of unknown say (None)
    is closed; the course route is open when ``IRAAS_OPEN_COURSE_ENDPOINT`` opens it. The one
    decision of the app's middleware and of the web servers' admission (``iraas/web/admission.py``).
    """
    if api_key_required is False:
        return False
    return not ((route, method) == COURSE_ROUTE and settings.open_course_endpoint)


def check_request(
    settings: AuthSettings, headers: Mapping[str, str], context: Mapping[str, Any], behind_gateway: bool
) -> None:
    """Raise Unauthorized (no key) or Forbidden (a wrong one) unless the request may use a keyed route.

    ``behind_gateway``: on Lambda with no keys of its own, API Gateway has checked the key, and its
    id is in the request context; a request without one reached a route the API left open by mistake.
    """
    if settings.required:
        given = headers.get(API_KEY_HEADER)
        if not given:
            raise missing_key()
        if not key_matches(given, settings.keys):
            raise wrong_key()
    elif behind_gateway:
        identity = context.get("identity") or {}
        if not identity.get("apiKeyId"):
            raise missing_key()


# ---- who is calling ------------------------------------------------------------------------

ANONYMOUS = "anonymous"  # no keys anywhere: loopback development, one caller
_GATEWAY_KEY_ID = re.compile(r"[A-Za-z0-9]{1,64}")
IDENTITY_HEX_CHARS = 16


def caller_identity(settings: AuthSettings, headers: Mapping[str, str], context: Mapping[str, Any]) -> str:
    """Who a request comes from, for scoping what it makes (idempotency keys, videos, CSVs) to it.

    Always a short ASCII string that is safe as one segment of an object key: with ``IRAAS_API_KEY``
    set, ``k<16 hex>``, the start of the SHA-256 of the key the caller presented (never the key);
    behind API Gateway, ``g<id>``, the id of the key the gateway accepted (``requestContext.identity.
    apiKeyId``); with no key anywhere (loopback development), ``anonymous``. Call it after
    :func:`check_request` has let the request through; a key rotated to a new one is a new caller.
    """
    if settings.required:
        given = headers.get(API_KEY_HEADER)
        if given:
            return "k" + hashlib.sha256(given.encode("utf-8", "surrogatepass")).hexdigest()[:IDENTITY_HEX_CHARS]
        return ANONYMOUS  # only the course endpoint, when it is opened, takes a request without one
    key_id = str((context.get("identity") or {}).get("apiKeyId") or "")
    if key_id:
        if _GATEWAY_KEY_ID.fullmatch(key_id):
            return "g" + key_id
        return "g" + hashlib.sha256(key_id.encode("utf-8", "surrogatepass")).hexdigest()[:IDENTITY_HEX_CHARS]
    return ANONYMOUS
