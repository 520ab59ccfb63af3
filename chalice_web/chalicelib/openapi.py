"""The HTTP API's published contract: an OpenAPI 3.1 document of every route the web tier serves.

Served at ``GET /openapi.json`` (app.py) and rendered by the page's ``assets/reference.html``. Each
operation is described here once; which routes need the API key is read from the app's own route
table (the flag ``make package`` and the auth middleware use), and the upload limits from the
settings the server enforces. tests/integration/web/test_openapi.py keeps the document in step with
the app: the same (path, method) pairs, valid OpenAPI, and real answers that match their schemas.
The page's own files (``GET /`` and ``/assets/{name}``) and the automatic 405 answers are not part
of the contract.
"""

from __future__ import annotations

import re
from typing import Any

from chalice import Chalice

from iraas.callbacks.jobs import MAX_URL_LENGTH
from iraas.callbacks.signing import DELIVERY_HEADER, SIGNATURE_HEADER
from iraas.classroom.keys import VIDEO_EXTENSIONS
from iraas.classroom.service import MAX_HTTP_VIDEO_BYTES
from iraas.classroom.students import MAX_LISTED_STUDENTS, MAX_NAME_CHARS, MAX_STUDENTS
from iraas.classroom.videos import MAX_LISTED_VIDEOS, MAX_VIDEO_NAME_CHARS
from iraas.images.jobs import MAX_TOP
from iraas.media.uploads import UploadLimits
from iraas.web.auth import API_KEY_HEADER

Schema = dict[str, Any]
OPENAPI_VERSION = "3.1.0"

# ---- schema helpers -------------------------------------------------------------------------


def _ref(name: str) -> Schema:
    return {"$ref": f"#/components/schemas/{name}"}


def _string(description: str = "", **extra: Any) -> Schema:
    return {"type": "string", **({"description": description} if description else {}), **extra}


def _integer(description: str = "", **extra: Any) -> Schema:
    return {"type": "integer", **({"description": description} if description else {}), **extra}


def _number(description: str = "", **extra: Any) -> Schema:
    return {"type": "number", **({"description": description} if description else {}), **extra}


def _nullable(schema: Schema) -> Schema:
    return {**schema, "type": [schema["type"], "null"]}


def _list(items: Schema, description: str = "", **extra: Any) -> Schema:
    return {"type": "array", "items": items, **({"description": description} if description else {}), **extra}


def _object(description: str = "", optional: tuple[str, ...] = (), **properties: Schema) -> Schema:
    """An object whose properties are all required but the ``optional`` ones."""
    return _record(properties, description, optional)


def _record(properties: dict[str, Schema], description: str = "", optional: tuple[str, ...] = ()) -> Schema:
    """:func:`_object` of properties given as a dict."""
    schema: Schema = {"type": "object", "properties": properties}
    required = [name for name in properties if name not in optional]
    if required:
        schema["required"] = required
    if description:
        schema["description"] = description
    return schema


def _error_schema(codes: tuple[str, ...]) -> Schema:
    """An ``Error`` whose code is one of ``codes`` (3.1 allows keywords beside a $ref)."""
    return {**_ref("Error"), "properties": {"error": {"properties": {"code": {"enum": list(codes)}}}}}


# ---- response helpers -----------------------------------------------------------------------

LOCATION = {"Location": {"description": "Where to ask for the answer.", "required": True, "schema": _string()}}
RETRY_AFTER = {"Retry-After": {"description": "Seconds to wait before trying again.", "schema": _integer()}}


def _json(description: str, schema: Schema, headers: dict[str, Any] | None = None) -> dict[str, Any]:
    response: dict[str, Any] = {"description": description, "content": {"application/json": {"schema": schema}}}
    if headers:
        response["headers"] = headers
    return response


def _error(description: str, *codes: str, headers: dict[str, Any] | None = None) -> dict[str, Any]:
    """An error answer; its schema lists the codes it may carry."""
    return _json(f"{description}.", _error_schema(codes), headers)


def _unavailable(*codes: str) -> dict[str, Any]:
    """503: nothing was accepted (or, after a wait, the image stays queued); try again later."""
    reasons = {
        "unavailable": "storage or the queue stayed unreachable",
        "stopping": "this web server is stopping",
        "not_configured": "this deployment has no classroom",
    }
    text = "; ".join(reasons[code] for code in codes)
    return _error(f"Not now: {text}", *codes, headers=RETRY_AFTER)


IMAGE_ERRORS = {
    "400": _error("The image is missing, not one, or the request is malformed",
                  "no_file", "not_an_image", "undecodable", "bad_multipart"),
    "413": _error("Over a stated limit (the message says which)", "too_large", "too_many_pixels"),
    "415": _error("Neither image/*, application/octet-stream nor multipart/form-data", "unsupported_media_type"),
}
# The answers many operations share, written once under components/responses.
SHARED_RESPONSES = {
    "NotFound": _error("Nothing you may see has that name or id (another caller's looks the same)", "not_found"),
    "Unauthorized": _error("No API key in the x-api-key header (API Gateway answers 403)", "unauthorized",
                           headers={"WWW-Authenticate": {"description": "Names the header.", "schema": _string()}}),
    "Forbidden": _error("The API key is not one the service accepts", "forbidden"),
    "Throttled": _error("Over API Gateway's throttle or the key's quota (on AWS)", "throttled"),
}


def _shared(name: str) -> dict[str, str]:
    return {"$ref": f"#/components/responses/{name}"}


NOT_FOUND = {"404": _shared("NotFound")}
# Added to every operation that needs the key (from the auth middleware, or API Gateway on AWS).
KEY_ERRORS = {"401": _shared("Unauthorized"), "403": _shared("Forbidden"), "429": _shared("Throttled")}

# ---- parameters and bodies ------------------------------------------------------------------

PATH_PARAMETERS = {
    "image_id": "The `id` POST /v1/images or POST /v1/batches answered.",
    "name": "The student's name, URL-encoded (`Ada%20Lovelace`).",
    "enrolment_id": "The `enrolment` POST /v1/students/{name}/photos answered.",
    "video_id": "The `video` POST /v1/videos answered.",
    "index": "The unknown person's `crop` in the attendance report (0, 1, ...).",
}
WAIT = {
    "name": "wait", "in": "query",
    "description": "Seconds to wait for the answer (0: answer at once with 202). Default and maximum: the server's "
    "IRAAS_MAX_WAIT_S (30 s; 25 s on AWS, within API Gateway's 29 s); a longer wait is clamped.",
    "schema": _number(minimum=0),
}
TOP = {
    "name": "top", "in": "query",
    "description": f"Also list the N most likely labels, as `top` (1 to {MAX_TOP}).",
    "schema": _integer(minimum=1, maximum=MAX_TOP),
}
CALLBACK = {
    "name": "callback", "in": "query",
    "description": "POST each answer, once stored, to this URL (percent-encoded), signed with the stack's webhook "
    "secret. A deployment calls https URLs of public addresses only (and what IRAAS_CALLBACK_ALLOW names); `iraas up` "
    "also calls http and loopback. Needs a webhook secret (`callbacks_disabled` without one).",
    "schema": _string(format="uri", maxLength=MAX_URL_LENGTH),
}
BINARY = _string(contentMediaType="application/octet-stream")


def _callbacks() -> dict[str, Any]:
    """The POST a ``?callback=`` URL receives (OpenAPI's callbacks object)."""
    headers = (
        {"name": SIGNATURE_HEADER, "in": "header", "required": True, "schema": _string(pattern="^sha256=[0-9a-f]{64}$"),
         "description": "`sha256=` and the hex HMAC-SHA256 of the raw body with the webhook secret: check it."},
        {"name": DELIVERY_HEADER, "in": "header", "required": True, "schema": _string(),
         "description": "The image's id: the same on every try and repeat of its answer, so drop what you have seen."},
    )
    post = _operation(
        "images", "The answer, once stored",
        {"2XX": {"description": "Taken. Anything else (or no answer within 10 s) is tried again later, with "
                 "jittered, doubling pauses, a bounded number of times; redirects are not followed."}},
        "At least once: normally exactly one POST per image.", headers,
        {"required": True, "content": {"application/json": {"schema": {"oneOf": [_ref("ImageResult"), _ref("FailedImage")]}}}},
    )
    return {"answered": {"{$request.query.callback}": {"post": post}}}


def _path_parameters(path: str) -> list[dict[str, Any]]:
    """Each ``{name}`` of the path, with the route's own name."""
    return [
        {"name": name, "in": "path", "required": True, "description": PATH_PARAMETERS[name], "schema": _string()}
        for name in re.findall(r"{(\w+)}", path)
    ]


def _image_body(limits: UploadLimits) -> dict[str, Any]:
    """One image, raw (``image/*``) or as the file part of a multipart form."""
    multipart = _object("One file part; its field name is free (`myfile`, `inputFile`, ...).", file=BINARY)
    return {
        "required": True,
        "description": f"JPEG, PNG, WebP, GIF, BMP or TIFF; at most {limits.max_image_bytes} bytes and "
        f"{limits.max_image_pixels} pixels.",
        "content": {
            "image/*": {"schema": _string(contentMediaType="image/*")},
            "application/octet-stream": {"schema": BINARY},
            "multipart/form-data": {"schema": multipart},
        },
    }


def _operation(tag: str, summary: str, responses: dict[str, Any], description: str = "",
               parameters: tuple[dict[str, Any], ...] = (), body: dict[str, Any] | None = None,
               callbacks: dict[str, Any] | None = None) -> dict[str, Any]:
    operation: dict[str, Any] = {"tags": [tag], "summary": summary, "responses": responses}
    if description:
        operation["description"] = description
    if parameters:
        operation["parameters"] = list(parameters)
    if body:
        operation["requestBody"] = body
    if callbacks:
        operation["callbacks"] = callbacks
    return operation


# ---- the schemas ----------------------------------------------------------------------------

WNID = _string("The WordNet id (`n02123159`) of a built-in ImageNet model's class: tells apart the two classes "
                "called `crane`. Absent for a model of one's own (`IRAAS_MODEL=/path/NAME.onnx`).")
PREDICTION = _object(
    "A class of the model (one of ImageNet's 1,000 for the built-in models) and the model's confidence in it.",
    optional=("wnid",),
    label=_string("The class's label (`tiger cat`)."),
    wnid=WNID,
    confidence=_number(minimum=0, maximum=1),
)
ERROR_DETAIL = _object(code=_string("For programs to test."), message=_string("For people to read."))
STUDENT_FIELD = {"anyOf": [_string(minLength=1, maxLength=MAX_NAME_CHARS), _number()]}
SPANS = _list(_list(_number(), minItems=2, maxItems=2), "Runs of samples seen, each [from, to] in seconds.")


def _schemas() -> dict[str, Schema]:
    image_id, image_name = _string("The request's id."), _string("The file's name.")
    bucket = {
        "answered": _integer(), "failed": _integer(), "images_per_s": _number(),
        **{f"latency_{s}_s": _nullable(_number()) for s in ("mean", "p50", "p90", "max")},
    }
    return {
        "Error": _object(
            "Every error answer. Some carry more facts beside it (a 503 after a wait: the image's id and status).",
            error=ERROR_DETAIL,
        ),
        "Prediction": PREDICTION,
        "ImageResult": _object(
            "A classified image.", optional=("top", "wnid"), id=image_id, name=image_name, status=_string(const="done"),
            label=_string(), wnid=WNID, confidence=_number(minimum=0, maximum=1),
            top5=_list(_ref("Prediction"), "The five most likely labels, most likely first (fewer if the model has "
                       "fewer labels).", minItems=1, maxItems=5),
            top=_list(_ref("Prediction"), "With `?top=N` only: the N most likely labels (at most the model's label "
                      "count).", minItems=1, maxItems=MAX_TOP),
        ),
        "FailedImage": _object(
            "An image the worker could not classify, for good.", id=image_id, name=image_name,
            status=_string(const="failed"), error=ERROR_DETAIL,
        ),
        "Queued": _object("Accepted, not answered yet: ask at the Location.", id=image_id, status=_string(const="queued")),
        "BatchItem": {
            "description": "One file part's place in a batch: its result, queued, or why it was not accepted.",
            "oneOf": [
                _ref("ImageResult"),
                _ref("FailedImage"),
                _object("Accepted, not answered within the wait.", id=image_id, name=image_name, status=_string(const="queued")),
                # "not": a failed image has a name and an error too; oneOf needs exactly one match.
                {**_object("Not an acceptable image (a single upload's 4xx codes), or storage would not take it "
                         "(`unavailable`: send it again); nothing was queued for it.", name=image_name, error=ERROR_DETAIL),
                 "not": {"required": ["status"]}},
            ],
        },
        "Stats": _object(
            "The request queue, the dead letters and the workers; with callbacks on, the answers still to be POSTed "
            "and those given up on.", optional=("dead_letter", "callbacks"),
            queue=_object(visible=_integer(), in_flight=_integer()),
            dead_letter=_object(visible=_integer(), in_flight=_integer()),
            workers=_object(
                running=_integer(), desired=_integer(), max=_integer("The most the scaler runs (0: unknown yet)."),
                capped_by=_string("What sets `max`: `cpu`, `setting` or `fixed` (empty: unknown yet)."),
                fleet=_string("`local`, the EC2 fleet's name, or `none` before a scaler has published."),
                updated_at=_number(),
            ),
            callbacks=_object(optional=("failed",), pending=_integer(), failed=_integer()),
        ),
        "Metrics": _object(
            "Images answered and their latency (queued to answered, seconds) by time bucket.",
            now=_number(), bucket_s=_integer(), window_s=_integer(), workers_reporting=_integer(),
            series=_list(_record({"t": _number(), **bucket}), "Every bucket of the window, oldest first."),
            last_minute=_record(bucket),
        ),
        "Student": _object(id=STUDENT_FIELD, name=STUDENT_FIELD, major=STUDENT_FIELD, year=STUDENT_FIELD),
        "StudentSummary": _object(
            id=_string(), name=_string(), major=_string(), year=_string(), faces=_integer("Enrolled face descriptors.")
        ),
        "VideoSummary": _object(
            "A video the caller uploaded.",
            video=_string("Its id, as POST /v1/videos answered."),
            name=_nullable(_string("The file name it was uploaded under.")),
            uploaded=_string("When, in UTC.", format="date-time"), bytes=_integer(),
            csv={"type": "boolean", "description": "Whether its CSV is written."},
            attendance={"type": "boolean", "description": "Whether its attendance report is written."},
        ),
        "Enrolment": _object(
            "What became of an enrolment photo.", enrolment=_string(), student=_nullable(_string()),
            status=_string(enum=["enrolled", "failed"]), faces=_integer("Faces the photo showed."),
            error=_nullable(_string()),
        ),
        "Attendance": _object(
            "The whole lecture's attendance; times are seconds from the start, on the sampled frames.",
            optional=("error", "version"),
            video=_string(), duration_s=_number(), sample_every_s=_number(), frames_sampled=_integer(),
            min_present_s=_number(),
            students=_list(_object(
                name=_string(), id=_string(), major=_string(), year=_string(), first_seen_s=_number(),
                last_seen_s=_number(), present_s=_number(), share=_number(), status=_string(enum=["present", "partial"]),
                spans=SPANS,
            )),
            unknown_faces=_integer(),
            unknown=_list(_object(first_seen_s=_number(), last_seen_s=_number(), present_s=_number(), crop=_integer(),
                                  spans=SPANS)),
            absent=_list(_string()), missing_spans=SPANS, version=_integer(), error=ERROR_DETAIL,
        ),
    }


# ---- the operations -------------------------------------------------------------------------


def _operations(limits: UploadLimits) -> dict[tuple[str, str], dict[str, Any]]:
    """Every route of the contract, by (path, method)."""
    answered = {
        "200": _json("The answer.", _ref("ImageResult")),
        "202": _json("Queued: not answered within the wait.", _ref("Queued"), LOCATION),
        "422": _json("The image failed for good.", _ref("FailedImage")),
    }
    image_errors_400 = _error("The image is missing, not one, or the request is malformed",
                              "no_file", "not_an_image", "undecodable", "bad_multipart", "bad_wait", "bad_top",
                              "bad_idempotency_key", "bad_callback", "callbacks_disabled")
    batch = _object(
        f"1 to {limits.max_batch_files} file parts, at most {limits.max_batch_bytes} bytes in all; field names are free.",
        files=_list(BINARY, minItems=1, maxItems=limits.max_batch_files),
    )
    video_types = ("video/mp4", "video/quicktime", "video/x-msvideo", "application/octet-stream")
    not_configured = {"503": _unavailable("not_configured", "unavailable")}
    return {
        ("/", "POST"): _operation(
            "images", "Classify one image, course style",
            {
                "200": {"description": "`<file name without extension>:<label>`.",
                        "content": {"text/plain": {"schema": _string(), "example": "cat:tiger cat"}}},
                "202": answered["202"], "422": answered["422"], **IMAGE_ERRORS,
                "503": _unavailable("stopping", "unavailable"),
            },
            "Waits the longest the server allows. Needs a key unless the deployment opens it "
            "(IRAAS_OPEN_COURSE_ENDPOINT; OpenCourseEndpoint on AWS).",
            body=_image_body(limits),
        ),
        ("/v1/images", "POST"): _operation(
            "images", "Classify one image",
            {**answered, **IMAGE_ERRORS, "400": image_errors_400, "503": _unavailable("stopping", "unavailable")},
            "Answers within `wait` seconds, else 202 and the image's id; a 503 after a wait carries the id too.",
            (WAIT, TOP, CALLBACK,
             {"name": "name", "in": "query", "description": "The file name of a raw upload.", "schema": _string()},
             {"name": "Idempotency-Key", "in": "header", "schema": _string(minLength=1, maxLength=128),
              "description": "Makes a retried POST the same request (the caller's own key: another caller's is "
              "another request)."}),
            _image_body(limits), _callbacks(),
        ),
        ("/v1/batches", "POST"): _operation(
            "images", "Classify several images",
            {
                "200": _json("Each file part's answer, in the parts' order; a bad part fails only itself.",
                             _object(results=_list(_ref("BatchItem")))),
                "400": _error("The request is malformed", "no_file", "bad_multipart", "bad_wait", "bad_top",
                              "bad_callback", "callbacks_disabled"),
                "413": _error("Too many file parts or bytes", "too_many_files", "too_large"),
                "415": _error("Not multipart/form-data", "unsupported_media_type"),
                "503": _unavailable("stopping", "unavailable"),
            },
            "Waits up to `wait` seconds in all; parts not answered by then are queued, with their ids.",
            (WAIT, TOP, CALLBACK),
            {"required": True, "content": {"multipart/form-data": {"schema": batch}}}, _callbacks(),
        ),
        ("/v1/images/{image_id}", "GET"): _operation(
            "images", "An image's answer",
            {**answered, "202": _json("Still queued.", _ref("Queued"), LOCATION), **NOT_FOUND,
             "503": _unavailable("unavailable")},
        ),
        ("/v1/healthz", "GET"): _operation(
            "service", "Health check",
            {"200": _json("The settings are valid.", _object(status=_string(const="ok"))),
             "500": _error("The settings are not (the log says which)", "internal")},
        ),
        ("/v1/stats", "GET"): _operation(
            "service", "Queue depths and workers",
            {"200": _json("Now.", _ref("Stats")), "503": _unavailable("unavailable")},
        ),
        ("/v1/metrics", "GET"): _operation(
            "service", "Throughput and latency, last 10 minutes",
            {"200": _json("10 s buckets.", _ref("Metrics")), "503": _unavailable("unavailable")},
        ),
        ("/openapi.json", "GET"): _operation(
            "service", "This document",
            {"200": {"description": "OpenAPI 3.1.", "content": {"application/json": {"schema": {"type": "object"}}}}},
        ),
        ("/v1/students", "POST"): _operation(
            "classroom", "Import students",
            {
                "200": _json("Imported; existing students keep their faces.", _object(
                    imported=_integer("The students of the body."),
                    new=_integer("Of them, those with no record before (written)."),
                    changed=_integer("Those whose id, major or year changed (written)."),
                    unchanged=_integer("Those already as given (not written)."),
                )),
                "400": _error("Not a list of students", "invalid_students"),
                "413": _error("Too many students or bytes", "too_many_students", "too_large"),
                "415": _json("Not application/json (answered by chalice itself, in its own shape).",
                             _object(Code=_string(), Message=_string())),
                **not_configured,
            },
            body={"required": True, "content": {"application/json": {
                "schema": _list(_ref("Student"), "Names are unique.", minItems=1, maxItems=MAX_STUDENTS)}}},
        ),
        ("/v1/students", "GET"): _operation(
            "classroom", "List students",
            {"200": _json(f"Sorted by name; at most {MAX_LISTED_STUDENTS:,} (`truncated` past that).",
                          _object(students=_list(_ref("StudentSummary")), truncated={"type": "boolean"})),
             **not_configured},
        ),
        ("/v1/students/{name}", "DELETE"): _operation(
            "classroom", "Remove a student and their faces",
            {"200": _json("Removed.", _object(deleted=_string())), **NOT_FOUND, **not_configured},
        ),
        ("/v1/students/{name}/photos", "POST"): _operation(
            "classroom", "Enrol a face from a photo",
            {"202": _json("Stored; the face function enrols it.",
                          _object(enrolment=_string(), status=_string(const="pending")), LOCATION),
             **IMAGE_ERRORS, **NOT_FOUND, **not_configured},
            "The photo must show the student's face alone.",
            body=_image_body(limits),
        ),
        ("/v1/enrolments/{enrolment_id}", "GET"): _operation(
            "classroom", "An enrolment's outcome",
            {"200": _json("Enrolled.", _ref("Enrolment")),
             "202": _json("Pending.", _object(enrolment=_string(), status=_string(const="pending")), LOCATION),
             "422": _json("Failed: the photo did not show exactly one face.", _ref("Enrolment")),
             **NOT_FOUND, **not_configured},
        ),
        ("/v1/videos", "POST"): _operation(
            "classroom", "Take attendance from a lecture video",
            {
                "202": _json("Stored; the CSV appears at the Location, the attendance report after it.", _object(
                    optional=("name",), video=_string(), name=_nullable(_string()), csv=_string("The CSV's file name."),
                    status=_string(const="queued"), attendance=_string("The attendance report's path."),
                ), LOCATION),
                "400": _error("No video, or a name or type that is not one", "no_file", "bad_name", "not_a_video"),
                "413": _error("Longer videos go to the bucket directly", "too_large"),
                **not_configured,
            },
            parameters=({"name": "name", "in": "query", "schema": _string(maxLength=MAX_VIDEO_NAME_CHARS),
                         "description": "The video's file name (`lecture.mp4`); the CSV is named after it."},),
            body={"required": True, "description": f"At most {MAX_HTTP_VIDEO_BYTES} bytes. Its type comes from "
                  f"`name`'s extension ({', '.join(VIDEO_EXTENSIONS)}), else from the Content-Type.",
                  "content": {media: {"schema": _string(contentMediaType=media)} for media in video_types}},
        ),
        ("/v1/videos", "GET"): _operation(
            "classroom", "List one's videos",
            {"200": _json(f"The caller's own videos, newest first; at most {MAX_LISTED_VIDEOS} (`truncated` past that).",
                          _object(videos=_list(_ref("VideoSummary")), truncated={"type": "boolean"})),
             **not_configured},
        ),
        ("/v1/videos/{video_id}/csv", "GET"): _operation(
            "classroom", "Who is in the first frame, as CSV",
            {"200": {"description": "`name,major,year` rows; for the uploader only.",
                     "headers": {"Content-Disposition": {"description": "The file name.", "schema": _string()}},
                     "content": {"text/csv": {"schema": _string()}}},
             "404": _error("Unknown, another caller's, or not ready yet", "not_found"), **not_configured},
        ),
        ("/v1/videos/{video_id}/attendance", "GET"): _operation(
            "classroom", "The whole lecture's attendance",
            {"200": _json("For the uploader only.", _ref("Attendance")),
             "404": _error("Unknown, another caller's, or not ready yet", "not_found"), **not_configured},
        ),
        ("/v1/videos/{video_id}/unknown/{index}", "GET"): _operation(
            "classroom", "A picture of an unknown person",
            {"200": {"description": "At most 160x160.",
                     "content": {"image/jpeg": {"schema": _string(contentMediaType="image/jpeg")}}},
             **NOT_FOUND, **not_configured},
        ),
    }


def openapi_document(app: Chalice, limits: UploadLimits | None = None) -> dict[str, Any]:
    """The OpenAPI 3.1 document of ``app``'s API; ``limits``: the upload limits the server enforces."""
    paths: dict[str, dict[str, Any]] = {}
    for (path, method), described in _operations(limits or UploadLimits()).items():
        operation = {**described, "parameters": _path_parameters(path) + described.get("parameters", [])}
        if not operation["parameters"]:
            del operation["parameters"]
        route = app.routes.get(path, {}).get(method)
        if route is not None:
            operation["operationId"] = route.view_name
        # Like the auth middleware: a route needs the key unless it says otherwise.
        if route is not None and route.api_key_required is False:
            operation["security"] = []
        else:
            operation["responses"] = {**operation["responses"], **KEY_ERRORS}
        operation["responses"] = dict(sorted(operation["responses"].items()))
        paths.setdefault(path, {})[method.lower()] = operation
    return {
        "openapi": OPENAPI_VERSION,
        "info": {
            "title": "IRaaS: image recognition as a service",
            "version": "v1",
            "description": "Classify images with an ImageNet model, and take a lecture's attendance from its video. "
            "Errors are JSON: `{\"error\": {\"code\", \"message\"}}`.",
        },
        # Relative: the API's base is where this document is served from (/api/ behind API Gateway's stage).
        "servers": [{"url": "."}],
        "security": [{"ApiKey": []}],
        "tags": [
            {"name": "images", "description": "Classify images: one, several, course style; read an answer by its id."},
            {"name": "classroom", "description": "Students, their enrolled faces, and lecture videos' attendance."},
            {"name": "service", "description": "Health, the queue and the workers, and this document."},
        ],
        "paths": dict(sorted(paths.items())),
        "components": {
            "securitySchemes": {"ApiKey": {"type": "apiKey", "in": "header", "name": API_KEY_HEADER}},
            "schemas": _schemas(),
            "responses": SHARED_RESPONSES,
        },
    }
