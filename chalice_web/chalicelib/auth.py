"""Every route needs an API key unless it says ``api_key_required=False`` (the check: iraas/web/auth.py).

One flag per route serves every place a key is checked: ``chalice package`` writes it into the
API's definition, so that API Gateway checks the key on Lambda; the middleware below checks it in
the web tier itself (``iraas up``, gunicorn, ``chalice local``) and, on Lambda, that API Gateway did.
A route added later needs a key unless it says otherwise.
"""

from __future__ import annotations

import functools
import logging
from collections.abc import Callable
from typing import Any

from chalice import Chalice, Response

from chalicelib.responses import error_response
from iraas.aws import on_lambda
from iraas.errors import ConfigError, ServiceError
from iraas.web.auth import AuthSettings, caller_identity, check_request, load_auth_settings, route_needs_key
from iraas.web.errors import INTERNAL, http_error

log = logging.getLogger("iraas.web")


@functools.lru_cache(maxsize=1)
def auth_settings() -> AuthSettings:
    """Read and checked once per process."""
    return load_auth_settings()


def caller(request: Any) -> str:
    """The identity of the caller of a request the middleware let through (iraas.web.auth.caller_identity)."""
    return caller_identity(auth_settings(), request.headers, request.context or {})


def require_api_keys(app: Chalice) -> None:
    """Mark every route that does not say ``api_key_required=False`` as needing a key, and check it
    on every request. Call once, after every route (the 405 ones included) is registered."""
    for entries in app.routes.values():
        for entry in entries.values():
            if entry.api_key_required is None:
                entry.api_key_required = True
    app.register_middleware(_authenticate(app), "http")


def open_routes(app: Chalice) -> set[tuple[str, str]]:
    """(path, method) of the routes that need no key."""
    return {
        (path, method)
        for path, entries in app.routes.items()
        for method, entry in entries.items()
        if entry.api_key_required is False
    }


def _authenticate(app: Chalice) -> Callable[[Any, Callable[[Any], Response]], Response]:
    def authenticate(request: Any, get_response: Callable[[Any], Response]) -> Response:
        route = (request.context or {}).get("resourcePath") or ""
        entry = app.routes.get(route, {}).get(request.method)
        if entry is None or entry.api_key_required is not False:  # unknown: closed
            try:
                settings = auth_settings()
                if route_needs_key(settings, route, request.method, entry.api_key_required if entry else None):
                    check_request(settings, request.headers, request.context or {}, behind_gateway=on_lambda())
            except ServiceError as exc:  # 401 or 403
                return error_response(http_error(exc))
            except ConfigError as exc:  # the message names the variable, never a key
                log.error("configuration error: %s", exc)
                return error_response(INTERNAL)
        return get_response(request)

    return authenticate
