"""The classroom's routes: students, their face photos, videos (the engine runs in FaceRecognitionFunction)."""

from __future__ import annotations

import functools

from chalice import Blueprint, Response

from chalicelib.auth import caller
from chalicelib.responses import api_errors, json_response, query_param, raw_bytes
from iraas.classroom.service import ClassroomService
from iraas.classroom.settings import load_face_settings
from iraas.classroom.videos import content_disposition
from iraas.errors import NotFound

routes = Blueprint(__name__)


@functools.lru_cache(maxsize=1)
def classroom() -> ClassroomService:
    """Settings are read and checked once per process, on the first request."""
    return ClassroomService(load_face_settings())


@routes.route("/v1/students", methods=["POST"], content_types=["application/json"])
@api_errors
def import_students() -> Response:
    """The course format: a JSON list of {"id", "name", "major", "year"}; existing faces are kept.
    ``{"imported", "new", "changed", "unchanged"}``: a record already as given is not written."""
    return json_response(200, classroom().import_students(routes.current_request.raw_body))


@routes.route("/v1/students", methods=["GET"])
@api_errors
def list_students() -> Response:
    """``{"students": [{"id", "name", "major", "year", "faces"}], "truncated"}``, sorted by name."""
    return json_response(200, classroom().list_students())


@routes.route("/v1/students/{name}", methods=["DELETE"])
@api_errors
def delete_student(name: str) -> Response:
    """The record and the enrolled faces go; ``name`` arrives URL-decoded, as API Gateway hands it."""
    classroom().delete_student(name)
    return json_response(200, {"deleted": name})


@routes.route("/v1/students/{name}/photos", methods=["POST"], content_types=["*/*"])
@api_errors
def submit_photo(name: str) -> Response:
    """A photo showing the student's face alone (raw ``image/*`` or a multipart file), enrolled by
    the face function; its outcome appears at the Location."""
    request = routes.current_request
    answer = classroom().submit_photo(name, raw_bytes(request), request.headers.get("content-type"))
    return json_response(202, answer, {"Location": f"/v1/enrolments/{answer['enrolment']}"})


@routes.route("/v1/enrolments/{enrolment_id}", methods=["GET"])
@api_errors
def get_enrolment(enrolment_id: str) -> Response:
    """200 enrolled, 422 failed (as a failed image is), 202 while the function has not answered."""
    outcome = classroom().find_enrolment(enrolment_id)
    if outcome is None:
        location = {"Location": f"/v1/enrolments/{enrolment_id}"}
        return json_response(202, {"enrolment": enrolment_id, "status": "pending"}, location)
    return json_response(200 if outcome.get("status") == "enrolled" else 422, outcome)


@routes.route("/v1/videos", methods=["POST"], content_types=["*/*"])
@api_errors
def submit_video() -> Response:
    """A raw video body, named by ``?name=lecture.mp4``; the caller's own CSV appears at the Location."""
    request = routes.current_request
    answer = classroom().submit_video(
        caller(request), query_param(request, "name"), raw_bytes(request), request.headers.get("content-type")
    )
    answer["attendance"] = f"/v1/videos/{answer['video']}/attendance"
    return json_response(202, answer, {"Location": f"/v1/videos/{answer['video']}/csv"})


@routes.route("/v1/videos", methods=["GET"])
@api_errors
def list_videos() -> Response:
    """The caller's own videos, newest first: ``{"videos": [{"video", "name", "uploaded", "bytes",
    "csv", "attendance"}], "truncated"}``."""
    return json_response(200, classroom().list_videos(caller(routes.current_request)))


@routes.route("/v1/videos/{video_id}/csv", methods=["GET"])
@api_errors
def video_csv(video_id: str) -> Response:
    """The CSV, for the caller who uploaded the video only (anyone else: 404), named after their file."""
    found = classroom().find_csv(caller(routes.current_request), video_id)
    headers: dict[str, str | list[str]] = {
        "Content-Type": "text/csv; charset=utf-8", "Content-Disposition": content_disposition(found.file_name),
    }
    return Response(body=found.text, status_code=200, headers=headers)


@routes.route("/v1/videos/{video_id}/attendance", methods=["GET"])
@api_errors
def video_attendance(video_id: str) -> Response:
    """The whole lecture's attendance (who was there, from when to when, for how long; who never came;
    how many unknown people), for the caller who uploaded the video only (anyone else: 404)."""
    return json_response(200, classroom().find_attendance(caller(routes.current_request), video_id))


@routes.route("/v1/videos/{video_id}/unknown/{index}", methods=["GET"])
@api_errors
def unknown_face(video_id: str, index: str) -> Response:
    """A small JPEG of the ``index``-th unknown person of the report (its ``unknown[n].crop``)."""
    if not index.isdigit():
        raise NotFound("not_found", f"no unknown face {index!r} in video {video_id!r}")
    crop = classroom().find_unknown_face(caller(routes.current_request), video_id, int(index))
    headers: dict[str, str | list[str]] = {"Content-Type": "image/jpeg", "Cache-Control": "private, max-age=3600"}
    return Response(body=crop, status_code=200, headers=headers)
