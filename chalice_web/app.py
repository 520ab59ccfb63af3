"""The web tier: HTTP routes over the shared package. Parse, call one use case, shape the answer.

Runs unchanged on Lambda behind API Gateway (`make package` / `sam deploy`), under `chalice local`,
and in `iraas up`'s embedded stack. The classroom routes are a blueprint (chalicelib/classroom.py);
errors become their HTTP answers in one place (iraas/web/errors.py, through chalicelib/responses.py).
"""

from __future__ import annotations

import functools
import threading
from typing import Any

from chalice import Chalice, Rate, Response

from chalicelib.auth import auth_settings, caller, require_api_keys
from chalicelib.classroom import routes as classroom_routes
from chalicelib.openapi import openapi_document
from chalicelib.page import routes as page_routes
from chalicelib.responses import answer_unsupported_methods, api_errors, json_response, query_param
from iraas import aws
from iraas.errors import InvalidRequest
from iraas.images.jobs import MAX_TOP, ImageResult, stem
from iraas.images.metrics import fleet_metrics_line
from iraas.images.replies import sweep_idle_reply_queues
from iraas.images.service import ImageService, Submission
from iraas.images.settings import load_image_settings
from iraas.media.uploads import RejectedPart, Upload, load_upload_limits, parse_batch, parse_upload
from iraas.scaling.ec2 import scale_ec2_fleet
from iraas.scaling.settings import load_scaling_settings
from iraas.web import drain
from iraas.web.errors import Unavailable


class ThreadSafeChalice(Chalice):
    """Chalice keeps ``current_request`` on the app object; a threaded server (chalice local,
    gunicorn) would mix up concurrent requests, so keep it per thread instead."""

    _state = threading.local()

    @property
    def current_request(self) -> Any:
        return getattr(self._state, "request", None)

    @current_request.setter
    def current_request(self, value: Any) -> None:
        self._state.request = value


app = ThreadSafeChalice(app_name="iraas-web")
# Bodies of these types reach the handler as bytes (API Gateway base64-encodes them for Lambda).
app.api.binary_types.extend(
    ["multipart/form-data", "image/webp", "image/bmp", "image/tiff", "image/avif", "image/*"]
)
app.api.binary_types.extend(["video/mp4", "video/quicktime", "video/x-msvideo", "video/*"])
app.register_blueprint(classroom_routes)  # /v1/students, /v1/videos
app.register_blueprint(page_routes)  # GET / (the web page) and /assets/*


@functools.lru_cache(maxsize=1)
def service() -> ImageService:
    """Settings are read and checked once per process, on the first request."""
    svc = ImageService(load_image_settings())
    drain.on_release(svc.release_waiters)  # an orderly stop answers the waiters still held
    return svc


def _query(name: str) -> str | None:
    return query_param(app.current_request, name)


def _wait_seconds() -> float:
    limits = service().settings.limits
    raw = _query("wait")
    if raw is None:
        return limits.default_wait_s
    try:
        wait = float(raw)
    except ValueError:
        wait = -1.0
    if not 0 <= wait < float("inf"):
        raise InvalidRequest("bad_wait", f"wait must be a number of seconds >= 0, not {raw!r}")
    return min(wait, limits.max_wait_s)  # longer waits are clamped, as documented


def _top() -> int | None:
    """``?top=N``: the answer also lists the N most likely labels (1 to MAX_TOP); None when absent."""
    raw = _query("top")
    if raw is None:
        return None
    if not (raw.isdigit() and 1 <= int(raw) <= MAX_TOP):
        raise InvalidRequest("bad_top", f"top must be a whole number from 1 to {MAX_TOP}, not {raw!r}")
    return int(raw)


def _refuse_while_stopping() -> None:
    if drain.stopping():
        raise Unavailable("stopping", "this web server is stopping; try again", retry_after_s=drain.RETRY_AFTER_S)


def _upload() -> Upload:
    """The request's image, checked; refused with 503 once this web process is stopping."""
    _refuse_while_stopping()
    request = app.current_request
    return parse_upload(
        request.raw_body, request.headers.get("content-type"), _query("name"), service().settings.limits
    )


def _batch_item(item: Submission | RejectedPart) -> dict[str, Any]:
    """One part's place in a batch's answer: its result (done or failed, as GET /v1/images/{id}
    shows it), queued with its id, or the reason it was not accepted."""
    if isinstance(item, RejectedPart):
        return {"name": item.name, "error": {"code": item.code, "message": item.message}}
    if item.result is not None:
        return item.result.public()
    return {"id": item.request.id, "name": item.request.name, "status": "queued"}


def _result_response(result: ImageResult) -> Response:
    if result.status == "failed":
        body = {"id": result.id, "name": result.name, "status": "failed", "error": result.public()["error"]}
        return json_response(422, body)
    return json_response(200, result.public())


def _queued(request_id: str) -> Response:
    location = f"/v1/images/{request_id}"
    return json_response(202, {"id": request_id, "status": "queued"}, {"Location": location})


def _answer(submission: Submission, waited: bool) -> Response:
    """The result; else queued (202), or, for a request that waited while this server is stopping,
    503 with Retry-After. Either way the request stays queued and is answered at its id."""
    if submission.result is not None:
        return _result_response(submission.result)
    request_id = submission.request.id
    if waited and drain.stopping():
        raise Unavailable(
            "stopping", f"this web server is stopping; the image is queued: GET /v1/images/{request_id} for its answer",
            retry_after_s=drain.RETRY_AFTER_S, id=request_id, status="queued",
        )
    return _queued(request_id)


@app.route("/", methods=["POST"], content_types=["*/*"])
@api_errors
def classify_course_style() -> Response:
    """Course-compatible: one multipart file in, ``<name without extension>:<label>`` out."""
    svc = service()
    submission = svc.submit(_upload(), caller(app.current_request), wait_s=svc.settings.limits.max_wait_s)
    result = submission.result
    if result is None or result.status == "failed":
        return _answer(submission, waited=True)
    return Response(
        body=f"{stem(result.name)}:{result.label}",
        status_code=200,
        headers={"Content-Type": "text/plain; charset=utf-8"},
    )


@app.route("/v1/images", methods=["POST"], content_types=["*/*"])
@api_errors
def submit_image() -> Response:
    wait, top, callback = _wait_seconds(), _top(), _query("callback")
    key = app.current_request.headers.get("idempotency-key")
    svc = service()
    svc.check_callback(callback)  # before the upload is parsed: a refused callback stores nothing
    submission = svc.submit(_upload(), caller(app.current_request), idempotency_key=key, wait_s=wait, top=top,
                            callback=callback)
    return _answer(submission, waited=wait > 0)


@app.route("/v1/batches", methods=["POST"], content_types=["*/*"])
@api_errors
def submit_batch() -> Response:
    """Multipart, 1 to IRAAS_MAX_BATCH_FILES files; ``{"results": [...]}`` in the parts' order."""
    wait, top, callback = _wait_seconds(), _top(), _query("callback")
    _refuse_while_stopping()
    request = app.current_request
    svc = service()
    svc.check_callback(callback)  # before the body is parsed: a refused callback refuses the batch
    parts = parse_batch(request.raw_body, request.headers.get("content-type"), svc.settings.limits)
    items = svc.submit_batch(parts, caller(request), wait_s=wait, top=top, callback=callback)
    return json_response(200, {"results": [_batch_item(item) for item in items]})


@app.route("/v1/images/{image_id}", methods=["GET"])
@api_errors
def get_image(image_id: str) -> Response:
    result = service().find(caller(app.current_request), image_id)
    return _queued(image_id) if result is None else _result_response(result)


@app.route("/v1/healthz", methods=["GET"], api_key_required=False)  # for load balancers and `iraas up`
@api_errors
def healthz() -> Response:
    service()  # settings are valid and clients can be built
    auth_settings()
    return json_response(200, {"status": "ok"})


@app.route("/v1/stats", methods=["GET"])
@api_errors
def stats() -> Response:
    return json_response(200, service().stats())


@app.route("/v1/metrics", methods=["GET"])
@api_errors
def metrics() -> Response:
    """Images answered per second and their latency (queued to answered), 10 s buckets, last 10 minutes."""
    return json_response(200, service().metrics())


@functools.lru_cache(maxsize=1)
def _openapi() -> dict[str, Any]:
    """Built once per process, after every route is registered (and marked for its key)."""
    return openapi_document(app, load_upload_limits())


@app.route("/openapi.json", methods=["GET"], api_key_required=False)  # the contract holds no data
@api_errors
def openapi() -> Response:
    """The API's OpenAPI document (chalicelib/openapi.py); assets/reference.html renders it."""
    return json_response(200, _openapi())


# The app tier's scaler in AWS. EventBridge fires at most once a minute, so each invocation keeps
# deciding every few seconds until just before its own timeout (60 s, see .chalice/config.json).
SCALER_MARGIN_S = 5.0


@app.schedule(Rate(1, unit=Rate.MINUTES), name="scale")
def scale(event: Any) -> dict:
    settings = load_scaling_settings()
    left = event.context.get_remaining_time_in_millis() / 1000 - SCALER_MARGIN_S
    decided = scale_ec2_fleet(settings, min(left, settings.scaler_invocation_s))
    # The fleet's minute for the stack's dashboard: CloudWatch Logs reads this line as metrics (EMF).
    images = load_image_settings()
    print(fleet_metrics_line(aws.client(images, "s3"), images.image_output_bucket, settings.fleet_name))
    return decided


# Reply queues of web processes that are gone (crashed hosts, recycled Lambda environments) are
# deleted once nobody has refreshed them for 10 minutes; every 5 minutes is often enough.
@app.schedule(Rate(5, unit=Rate.MINUTES), name="sweep_replies")
def sweep_replies(event: Any) -> dict:
    return {"swept": len(sweep_idle_reply_queues(load_image_settings()))}


# Last, once every route is known: the other methods of each route answer 405 JSON, and every
# route but the ones that say api_key_required=False needs an API key (chalicelib/auth.py).
answer_unsupported_methods(app)
require_api_keys(app)
