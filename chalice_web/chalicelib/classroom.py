"""The classroom's routes (the recognition itself runs in FaceRecognitionFunction)."""

from __future__ import annotations

import functools

from chalice import Blueprint, Response

from chalicelib.responses import api_errors, json_response, query_param
from iraas.classroom.service import ClassroomService
from iraas.classroom.settings import load_face_settings
from iraas.errors import ApiError

routes = Blueprint(__name__)


@functools.lru_cache(maxsize=1)
def classroom() -> ClassroomService:
    """Settings are read and checked once per process, on the first request."""
    return ClassroomService(load_face_settings())


@routes.route("/v1/students", methods=["POST"], content_types=["application/json"])
@api_errors
def import_students() -> Response:
    """The course format: a JSON list of {"id", "name", "major", "year"}; existing faces are kept."""
    return json_response(200, {"imported": classroom().import_students(routes.current_request.raw_body)})


@routes.route("/v1/videos", methods=["POST"], content_types=["*/*"])
@api_errors
def submit_video() -> Response:
    """A raw video body, named by ``?name=lecture.mp4``; the CSV appears at the Location."""
    request = routes.current_request
    body = request.raw_body  # bytes: video/* is a binary type of the app
    answer = classroom().submit_video(query_param(request, "name"), body.encode() if isinstance(body, str) else body)
    return json_response(202, answer, {"Location": f"/v1/videos/{answer['video']}/csv"})


@routes.route("/v1/videos/{name}/csv", methods=["GET"])
@api_errors
def video_csv(name: str) -> Response:
    text = classroom().find_csv(name)
    if text is None:
        raise ApiError(404, "not_found", f"no CSV for {name!r} yet")
    return Response(body=text, status_code=200, headers={"Content-Type": "text/csv; charset=utf-8"})
