"""The web page: ``GET /`` and its few static files (the API reference among them), served from
``chalicelib/static/``.

Plain HTML, CSS and JavaScript with no build step; the page talks to the same JSON API as every
other client. Files are read once per process. Every answer carries a content security policy
that allows only this origin's scripts and styles (no inline script).
"""

from __future__ import annotations

import functools
from pathlib import Path

from chalice import Blueprint, Response

from chalicelib.responses import api_errors
from iraas.errors import NotFound

routes = Blueprint(__name__)

STATIC = Path(__file__).with_name("static")
# The files the page may load, and their types: nothing else under static/ is served.
ASSETS = {
    "app.css": "text/css; charset=utf-8",
    "app.js": "text/javascript; charset=utf-8",
    "charts.js": "text/javascript; charset=utf-8",
    "classify.js": "text/javascript; charset=utf-8",
    "classroom.js": "text/javascript; charset=utf-8",
    "dashboard.js": "text/javascript; charset=utf-8",
    "favicon.svg": "image/svg+xml",
    # The API reference: the OpenAPI document (GET /openapi.json) as a page of its own.
    "reference.html": "text/html; charset=utf-8",
    "reference.js": "text/javascript; charset=utf-8",
}
CONTENT_SECURITY_POLICY = "; ".join(
    [
        "default-src 'none'",
        "script-src 'self'",
        "style-src 'self'",
        "img-src 'self' blob: data:",  # thumbnails are blob: URLs of the user's own files
        "connect-src 'self'",
        "base-uri 'self'",
        "form-action 'self'",
        "frame-ancestors 'none'",
    ]
)
SECURITY_HEADERS = {
    "Content-Security-Policy": CONTENT_SECURITY_POLICY,
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
}


@functools.cache
def _read(name: str) -> str:
    return (STATIC / name).read_text(encoding="utf-8")


def _base_path() -> str:
    """The path the API is mounted at, ending in ``/``: ``/api/`` behind API Gateway's stage.

    API Gateway routes ``/api/`` to the route ``/``, so the page's relative links need a base
    that the browser's address alone does not give when the stage is opened without its slash.
    """
    request = routes.current_request
    context_path = str((request.context or {}).get("path") or "").rstrip("/")  # "/api" or "/api/"
    route_path = (request.path or "").rstrip("/")  # "/" is ""
    prefix = context_path[: len(context_path) - len(route_path)] if context_path.endswith(route_path) else ""
    return prefix.rstrip("/") + "/"


# The page and its files hold no data and need no key; every API call the page makes sends one.
@routes.route("/", methods=["GET"], api_key_required=False)
@api_errors
def index() -> Response:
    html = _read("index.html").replace('<base href="/">', f'<base href="{_base_path()}">', 1)
    return Response(
        body=html,
        status_code=200,
        headers={"Content-Type": "text/html; charset=utf-8", "Cache-Control": "no-cache", **SECURITY_HEADERS},
    )


@routes.route("/assets/{name}", methods=["GET"], api_key_required=False)
@api_errors
def asset(name: str) -> Response:
    if name not in ASSETS:
        raise NotFound("not_found", f"no such file: {name!r}")
    return Response(
        body=_read(name),
        status_code=200,
        headers={"Content-Type": ASSETS[name], "Cache-Control": "no-cache", **SECURITY_HEADERS},
    )
