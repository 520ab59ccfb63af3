"""The API key as the command line sends it (``iraas classify --remote``, ``iraas status --url``), and
what it tells its user when the service refuses it."""

from __future__ import annotations

import os
from collections.abc import Mapping

from iraas.web.auth import API_KEY_ENV, API_KEY_HEADER, parse_keys


def client_headers(env: Mapping[str, str] | None = None) -> dict[str, str]:
    """The ``x-api-key`` header a client sends: the first key of ``IRAAS_API_KEY`` (with a list being
    rotated, the new key goes first); none when it is unset."""
    keys = parse_keys((os.environ if env is None else env).get(API_KEY_ENV, ""))
    return {API_KEY_HEADER: keys[0]} if keys else {}


def client_refusal(url: str, status: int, sent_key: bool) -> str | None:
    """What a client tells its user when the service refuses it for its key; None otherwise."""
    if status not in (401, 403):
        return None
    if not sent_key:
        return f"{url} needs an API key: set {API_KEY_ENV} (the key is sent as {API_KEY_HEADER})"
    return f"{url} refused the API key in {API_KEY_ENV}"
