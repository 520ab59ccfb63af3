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
from iraas.media.uploads import UploadLimits
from iraas.web.admission import Admission, Admitted
from iraas.web.auth import AuthSettings, load_auth_settings
from iraas.web.errors import http_error
from iraas.web.project import ProjectGateway, load_chalice_project

_READ_CHUNK = 256 * 1024

StartResponse = Callable[..., Any]
Environ = dict[str, Any]


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


def read_body(environ: Environ, admitted: Admitted) -> bytes | None:
    """The whole body, or ``None`` when there is none; TooLarge past ``admitted.limit`` bytes.

    With no Content-Length (chunked transfer, which gunicorn de-chunks), read until the end of
    ``wsgi.input`` but never more than ``limit + 1`` bytes. A body that ends before its
    Content-Length (the client went, or missed its deadline) is an InvalidRequest.
    """
    stream = environ.get("wsgi.input")
    if admitted.length is not None:
        body = _read_up_to(stream, admitted.length) if admitted.length else b""
        if len(body) < admitted.length:
            raise InvalidRequest("bad_request", f"the body ended after {len(body)} of its {admitted.length} bytes")
    else:
        body = _read_up_to(stream, admitted.limit + 1) if stream is not None else b""
        if len(body) > admitted.limit:
            raise TooLarge("too_large", f"the request body is over {admitted.limit} bytes; {_limit_named(admitted)}")
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


def _limit_named(admitted: Admitted) -> str:
    return f"the limit is {admitted.named} bytes ({admitted.named / MIB:.1f} MiB)"


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
        self,
        app: Chalice,
        config: Config | None = None,
        max_image_bytes: int = 10 * MIB,
        max_batch_bytes: int = 0,
        auth: AuthSettings | None = None,
    ) -> None:
        self.app = app
        # No batch limit of its own (0): a batch's body is bounded as one image's.
        uploads = UploadLimits(max_image_bytes=max_image_bytes, max_batch_bytes=max_batch_bytes or max_image_bytes)
        # Each request is admitted on its headers (the key, the route's body limit) before its body
        # is read; gunicorn's worker (iraas/web/gthread.py) asks the same of it before the app runs.
        self.admission = Admission(app, load_auth_settings() if auth is None else auth, uploads)
        self.max_body_bytes = uploads.max_body_bytes  # one image's body, multipart framed
        self._gateway = ProjectGateway(app, config or Config.create(app_name=app.app_name))

    def __call__(self, environ: Environ, start_response: StartResponse) -> Iterable[bytes]:
        status, headers, body = self.handle(environ)
        headers = [(k, v) for k, v in headers if k.lower() != "content-length"]
        headers.append(("Content-Length", str(len(body))))
        start_response(_status_line(status), headers)
        return [] if environ.get("REQUEST_METHOD") == "HEAD" else [body]

    def handle(self, environ: Environ) -> tuple[int, list[tuple[str, str]], bytes]:
        """Status, headers and body for one request."""
        method, path, headers = environ.get("REQUEST_METHOD", "GET"), request_path(environ), request_headers(environ)
        try:
            body = read_body(environ, self.admission.admit(method, path, headers))
        except ServiceError as exc:  # refused on its headers (401, 403, 413, 400), or a chunked body too large
            return _error(exc)
        try:
            response = self._gateway.handle_request(method=method, path=path, headers=headers, body=body)
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
