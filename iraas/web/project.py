"""The Chalice project in ``chalice_web/``, loaded and routed the way ``chalice local`` does it.

One loader for the embedded web server, the WSGI adapter (gunicorn, OpenStack) and the tests: it
puts the project folder (for ``chalicelib``) and its ``vendor/`` on ``sys.path`` as chalice does.
:class:`ProjectGateway` is chalice's local gateway with the two answers API Gateway gives
differently once deployed (see ``template.yaml``'s ``GatewayResponses``): a path no route matches
is the project's ``404 not_found`` JSON, and path parameters reach the app decoded.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import TYPE_CHECKING, Any
from urllib.parse import unquote, urlsplit

from chalice.local import ChaliceRequestHandler, LocalGateway, LocalGatewayException, RouteMatcher

from iraas.config import CHALICE_PROJECT
from iraas.web.admission import route_pattern
from iraas.web.errors import error_body
from iraas.web.prometheus import METRICS_PATH, count_request, metrics_response

if TYPE_CHECKING:
    from chalice import Chalice
    from chalice.config import Config


class NoRouteError(LocalGatewayException):
    """No route matches the path (chalice local would answer API Gateway's 403)."""

    CODE = 404

    def __init__(self, path: str) -> None:
        message = f"no such resource: {urlsplit(path).path}"
        body = json.dumps(error_body("not_found", message), separators=(",", ":")).encode()
        super().__init__({"Content-Type": "application/json"}, body)


class ProjectGateway(LocalGateway):
    """chalice's local gateway, answering unknown paths and decoding path parameters as API Gateway
    does; beside the app, ``GET /metrics`` for Prometheus, and each answer counted for it
    (``iraas/web/prometheus.py``)."""

    def __init__(self, app_object: Chalice, config: Config) -> None:
        super().__init__(app_object, config)
        self._routes = RouteMatcher(list(app_object.routes))  # a request's route, as its metrics label

    def handle_request(self, method: str, path: str, headers: dict, body: bytes | None) -> dict:
        route_path = path.split("?", 1)[0]
        if route_path == METRICS_PATH and method == "GET":
            response = metrics_response(headers)
            count_request(METRICS_PATH, response["statusCode"])
            return response
        route = route_pattern(self._routes, path)
        try:
            answer: dict = super().handle_request(method, path, headers, body)
        except LocalGatewayException as exc:
            count_request(route, exc.CODE)
            raise
        count_request(route, int(answer["statusCode"]))
        return answer

    def _generate_lambda_event(self, method: str, path: str, headers: dict, body: bytes | None) -> dict:
        try:
            event: dict[str, Any] = super()._generate_lambda_event(method, path, headers, body)
        except ValueError:  # chalice's route matcher found nothing
            raise NoRouteError(path) from None
        params = event.get("pathParameters")
        if params:
            event["pathParameters"] = {k: unquote(v) for k, v in params.items()}
        return event


class ProjectRequestHandler(ChaliceRequestHandler):
    """``chalice local``'s HTTP handler over :class:`ProjectGateway`."""

    def __init__(self, request: Any, client_address: Any, server: Any, app_object: Chalice, config: Config) -> None:
        self.local_gateway = ProjectGateway(app_object, config)
        # Skip ChaliceRequestHandler.__init__, which would build a plain LocalGateway.
        super(ChaliceRequestHandler, self).__init__(request, client_address, server)


def load_chalice_project(project_dir: Path = CHALICE_PROJECT, stage: str = "dev") -> tuple[Chalice, Config]:
    """The app and its stage's config."""
    from chalice.cli.factory import CLIFactory

    config = CLIFactory(project_dir=str(project_dir)).create_config_obj(chalice_stage_name=stage)
    return config.chalice_app, config
