"""How every route answers: JSON bodies, and client errors as ``{"error": {"code", "message"}}``."""

from __future__ import annotations

import functools
import logging
from collections.abc import Callable
from typing import Any

from chalice import Response

from iraas.errors import ApiError

log = logging.getLogger("iraas.web")


def json_response(status: int, body: dict[str, Any], headers: dict[str, str] | None = None) -> Response:
    return Response(body=body, status_code=status, headers={"Content-Type": "application/json", **(headers or {})})


def api_errors(view: Callable[..., Response]) -> Callable[..., Response]:
    """Client errors become their 4xx JSON answer; anything else a clean 500 (the log has the trace)."""

    @functools.wraps(view)
    def wrapper(*args: Any, **kwargs: Any) -> Response:
        try:
            return view(*args, **kwargs)
        except ApiError as exc:
            return json_response(exc.status, exc.body())
        except Exception:  # noqa: BLE001 - nothing escapes as an HTML error page
            log.exception("unhandled error")
            return json_response(500, {"error": {"code": "internal", "message": "internal error"}})

    return wrapper


def query_param(request: Any, name: str) -> str | None:
    """One query parameter of a chalice request, None when absent."""
    value: str | None = (request.query_params or {}).get(name)
    return value
