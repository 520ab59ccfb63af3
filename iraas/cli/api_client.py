"""The HTTP API as a command's ``--url`` speaks it (``iraas students list --url ...``): one request,
with the API key of ``IRAAS_API_KEY``, and what went wrong in the service's own words.

A service that does not answer, or refuses the key, is a UsageError (exit 2, as ``iraas status
--url``); an answer of 404 is NotFound and any other error a ServiceError, with the message of the
service's ``{"error": {"code", "message"}}`` (exit 1).
"""

from __future__ import annotations

import json
from typing import Any
from urllib.parse import quote

from iraas.errors import NotFound, ServiceError, UsageError

TIMEOUT_S = 30.0  # API Gateway's own limit is 29 s


def path_segment(value: str) -> str:
    """``value`` as one segment of a route (a student's name may hold spaces or a slash)."""
    return quote(value, safe="")


def call(url: str, method: str, route: str, timeout_s: float = TIMEOUT_S) -> Any:
    """``METHOD <url><route>``; the urllib3 response of a 2xx answer."""
    import urllib3

    from iraas.cli.api_key import client_headers, client_refusal
    from iraas.cli.classify.remote import reason

    headers = client_headers()
    try:
        response = urllib3.PoolManager().request(method, f"{url}{route}", headers=headers, timeout=timeout_s, retries=1)
    except urllib3.exceptions.HTTPError as exc:
        raise UsageError(f"no IRaaS service at {url}: {reason(exc)}") from None
    refusal = client_refusal(url, response.status, bool(headers))
    if refusal:
        raise UsageError(refusal)
    if response.status >= 400:
        code, message = _error(response)
        raise (NotFound if response.status == 404 else ServiceError)(code, message)
    return response


def call_json(url: str, method: str, route: str) -> dict[str, Any]:
    """``call``'s answer as a JSON object; UsageError if it is not one."""
    body = _json(call(url, method, route))
    if body is None:
        raise UsageError(f"{url}{route} did not answer with a JSON object; is it an IRaaS service?")
    return body


def _json(response: Any) -> dict[str, Any] | None:
    try:
        body = json.loads(response.data)
    except ValueError:
        return None
    return body if isinstance(body, dict) else None


def _error(response: Any) -> tuple[str, str]:
    """The service's ``{"error": {"code", "message"}}``, else ``http_<status>`` and the body's start."""
    error = (_json(response) or {}).get("error")
    if isinstance(error, dict) and error.get("message"):
        return str(error.get("code") or f"http_{response.status}"), str(error["message"])
    text = response.data[:200].decode("utf-8", "replace").strip()
    return f"http_{response.status}", f"HTTP {response.status}" + (f": {text}" if text else "")
