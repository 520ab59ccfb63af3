"""How every route answers: JSON bodies, and errors as ``{"error": {"code", "message"}}`` with the
status iraas/web/errors.py gives their type."""

from __future__ import annotations

import functools
import logging
from collections.abc import Callable
from typing import Any

from chalice import Chalice, Response

from iraas.aws import is_unavailable
from iraas.errors import ServiceError
from iraas.web.errors import INTERNAL, PRIVATE_HEADERS, STORAGE_UNAVAILABLE, HttpError, error_body, http_error

log = logging.getLogger("iraas.web")


def json_response(status: int, body: dict[str, Any], headers: dict[str, str] | None = None) -> Response:
    return Response(body=body, status_code=status, headers={"Content-Type": "application/json", **(headers or {})})


def error_response(error: HttpError) -> Response:
    return json_response(error.status, error.body, error.headers)




def api_errors(view: Callable[..., Response]) -> Callable[..., Response]:
    """A use case's error becomes its answer (iraas/web/errors.py); anything else a clean 500 (the
    log has the trace), or a 503 when storage or the queue stayed unavailable. Every answer gets
    :data:`PRIVATE_HEADERS` (but a ``Cache-Control`` of its own)."""

    @functools.wraps(view)
    def wrapper(*args: Any, **kwargs: Any) -> Response:
        try:
            response = view(*args, **kwargs)
        except ServiceError as exc:
            response = error_response(http_error(exc))
        except Exception as exc:  # noqa: BLE001 - nothing escapes as an HTML error page
            if is_unavailable(exc):  # after boto3's bounded retries: the client may try again
                log.warning("storage or queue unavailable: %s", exc)
                response = error_response(http_error(STORAGE_UNAVAILABLE))
            else:
                log.exception("unhandled error")
                response = error_response(INTERNAL)
        response.headers = {**PRIVATE_HEADERS, **(response.headers or {})}
        return response

    return wrapper


def raw_bytes(request: Any) -> bytes | None:
    """The request body as bytes (binary types arrive as bytes; chalice gives text for the others)."""
    body = request.raw_body
    return body.encode() if isinstance(body, str) else body


def query_param(request: Any, name: str) -> str | None:
    """One query parameter of a chalice request, None when absent."""
    value: str | None = (request.query_params or {}).get(name)
    return value


# What a client may send; a route answers the ones it does not support with 405 (below).
HTTP_METHODS = ("GET", "POST", "PUT", "PATCH", "DELETE", "HEAD", "OPTIONS")


def answer_unsupported_methods(app: Chalice) -> None:
    """Give every route a 405 ``method_not_allowed`` JSON answer (with ``Allow``) for the other methods.

    Call once all routes are registered. Without it API Gateway answers such a request with its
    own 403 "Missing Authentication Token" and chalice local with a differently shaped 405; as
    routes of the app, the answer is the same on Lambda, chalice local and gunicorn.
    """
    for index, (path, entries) in enumerate(sorted(app.routes.items())):
        allowed = sorted(entries)
        missing = [method for method in HTTP_METHODS if method not in entries]
        if missing:
            view = _method_not_allowed(path, allowed)
            app.route(path, methods=missing, content_types=["*/*"], name=f"method_not_allowed_{index}")(view)


def _method_not_allowed(path: str, allowed: list[str]) -> Callable[..., Response]:
    def view(**_path_params: str) -> Response:
        body = error_body("method_not_allowed", f"{path} supports {', '.join(allowed)}")
        return json_response(405, body, {"Allow": ", ".join(allowed)})

    return view
