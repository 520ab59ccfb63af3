"""A small WSGI adapter over chalice's local gateway, so gunicorn can serve the Chalice app unchanged.

Chalice has no public WSGI adapter. Its local gateway (what ``chalice local`` runs) already turns
``(method, path, headers, body)`` into the Lambda proxy event and routes it, exactly as API Gateway
would; this module only translates the WSGI environ into that call and the gateway's answer back
into a WSGI response. The gateway keeps no per-request state, so one instance serves every thread;
the app keeps ``current_request`` per thread (``ThreadSafeChalice`` in ``chalice_web/app.py``).
"""

from __future__ import annotations

import base64
import http
import json
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any
from urllib.parse import quote

from chalice import Chalice
from chalice.config import Config
from chalice.local import LocalGatewayException

from iraas.config import MIB
from iraas.errors import InvalidRequest, ServiceError, TooLarge
from iraas.media.uploads import MULTIPART_HEADROOM
from iraas.web.errors import http_error
from iraas.web.project import ProjectGateway, load_chalice_project

_READ_CHUNK = 256 * 1024

StartResponse = Callable[..., Any]
Environ = dict[str, Any]


class BodyTooLarge(Exception):
    """The request body is over the limit; answered 413 before it is read in full."""

    def __init__(self, size: int, exact: bool) -> None:
        super().__init__(size)
        self.size = size
        self.exact = exact  # from Content-Length; otherwise only "at least this much" is known


def request_headers(environ: Environ) -> dict[str, str]:
    """The request's headers from the environ, lower-cased (HTTP_X_FOO -> x-foo)."""
    headers = {
        key[5:].replace("_", "-").lower(): value for key, value in environ.items() if key.startswith("HTTP_")
    }
    for key in ("CONTENT_TYPE", "CONTENT_LENGTH"):
        if environ.get(key):
            headers[key.replace("_", "-").lower()] = environ[key]
    return headers


def request_path(environ: Environ) -> str:
    """Path and query string as the client sent them (percent-encoded), which the gateway routes."""
    # PEP 3333: PATH_INFO is the decoded path, its bytes carried as latin-1.
    path = environ.get("SCRIPT_NAME", "") + environ.get("PATH_INFO", "")
    path = quote(path.encode("latin-1"), safe="/:@!$&'()*+,;=-._~") or "/"
    query = environ.get("QUERY_STRING", "")
    return f"{path}?{query}" if query else path


def read_body(environ: Environ, limit: int) -> bytes | None:
    """The whole body, or ``None`` when there is none; ``BodyTooLarge`` past ``limit`` bytes.

    With no Content-Length (chunked transfer, which gunicorn de-chunks), read until the end of
    ``wsgi.input`` but never more than ``limit + 1`` bytes.
    """
    raw_length = environ.get("CONTENT_LENGTH") or ""
    stream = environ.get("wsgi.input")
    if raw_length.strip():
        try:
            length = int(raw_length)
        except ValueError:
            length = -1
        if length < 0:
            raise ValueError(f"Content-Length {raw_length!r} is not a size")
        if length > limit:
            raise BodyTooLarge(length, exact=True)
        body = _read_up_to(stream, length) if length else b""
    else:
        body = _read_up_to(stream, limit + 1) if stream is not None else b""
        if len(body) > limit:
            raise BodyTooLarge(len(body), exact=False)
    return body or None


def _read_up_to(stream: Any, size: int) -> bytes:
    parts: list[bytes] = []
    remaining = size
    while remaining > 0:
        chunk = stream.read(min(_READ_CHUNK, remaining))
        if not chunk:
            break
        parts.append(chunk)
        remaining -= len(chunk)
    return b"".join(parts)


def _error(exc: ServiceError) -> tuple[int, list[tuple[str, str]], bytes]:
    """The answer to a request refused before it reached the app (iraas/web/errors.py's, as the app's)."""
    error = http_error(exc)
    headers = [("Content-Type", "application/json"), *error.headers.items()]
    return error.status, headers, json.dumps(error.body).encode()


def response_parts(response: dict) -> tuple[int, list[tuple[str, str]], bytes]:
    """Status, header list and body bytes of a Lambda proxy response (as the app returns it)."""
    body = response.get("body")
    if body is None:
        data = b""
    elif response.get("isBase64Encoded"):
        data = base64.b64decode(body)
    else:
        data = body if isinstance(body, bytes) else str(body).encode("utf-8")
    headers: list[tuple[str, str]] = [(k, str(v)) for k, v in (response.get("headers") or {}).items()]
    for name, values in (response.get("multiValueHeaders") or {}).items():
        headers.extend((name, str(v)) for v in values)
    if not any(name.lower() == "content-type" for name, _ in headers) and data:
        headers.append(("Content-Type", "application/json"))  # chalice's default, as chalice local does
    return int(response["statusCode"]), headers, data


def _status_line(status: int) -> str:
    try:
        return f"{status} {http.HTTPStatus(status).phrase}"
    except ValueError:
        return f"{status} Unknown"


class WSGIAdapter:
    """A WSGI application that serves a Chalice app through chalice's local gateway."""

    def __init__(
        self, app: Chalice, config: Config | None = None, max_image_bytes: int = 10 * MIB, max_batch_bytes: int = 0
    ) -> None:
        self.app = app
        self.max_image_bytes = max_image_bytes
        self.max_batch_bytes = max_batch_bytes
        # As much as the web tier could accept (one image, or a batch), so that it answers every such
        # body with its own codes.
        self.max_body_bytes = max(max_image_bytes + MULTIPART_HEADROOM, max_batch_bytes)
        self._gateway = ProjectGateway(app, config or Config.create(app_name=app.app_name))

    def __call__(self, environ: Environ, start_response: StartResponse) -> Iterable[bytes]:
        status, headers, body = self.handle(environ)
        headers = [(k, v) for k, v in headers if k.lower() != "content-length"]
        headers.append(("Content-Length", str(len(body))))
        start_response(_status_line(status), headers)
        return [] if environ.get("REQUEST_METHOD") == "HEAD" else [body]

    def handle(self, environ: Environ) -> tuple[int, list[tuple[str, str]], bytes]:
        """Status, headers and body for one request."""
        try:
            body = read_body(environ, self.max_body_bytes)
        except BodyTooLarge as exc:
            batch = self.max_batch_bytes and request_path(environ).rstrip("/") == "/v1/batches"
            limit = self.max_batch_bytes if batch else self.max_image_bytes
            size = f"{exc.size} bytes" if exc.exact else f"over {self.max_body_bytes} bytes"
            return _error(
                TooLarge("too_large", f"the request body is {size}; the limit is {limit} bytes ({limit / MIB:.1f} MiB)")
            )
        except ValueError as exc:
            return _error(InvalidRequest("bad_request", str(exc)))
        try:
            response = self._gateway.handle_request(
                method=environ.get("REQUEST_METHOD", "GET"),
                path=request_path(environ),
                headers=request_headers(environ),
                body=body,
            )
        except LocalGatewayException as exc:  # no route (404 JSON), or the gateway's own 401/403
            return exc.CODE, list((exc.headers or {}).items()), exc.body or b""
        return response_parts(response)


def make_application(project_dir: Path, max_image_bytes: int | None = None, stage: str = "dev") -> WSGIAdapter:
    """The WSGI app for a Chalice project; the image limit defaults to the checked settings'."""
    max_batch_bytes = 0
    if max_image_bytes is None:
        from iraas.images.settings import load_image_settings

        # Read and checked at start-up: a misconfigured server fails to boot, not mid-request.
        limits = load_image_settings().limits
        max_image_bytes, max_batch_bytes = limits.max_image_bytes, limits.max_batch_bytes
    app, config = load_chalice_project(project_dir, stage)
    return WSGIAdapter(app, config, max_image_bytes=max_image_bytes, max_batch_bytes=max_batch_bytes)
