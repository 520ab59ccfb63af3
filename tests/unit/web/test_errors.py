"""Domain errors as the web tier answers them (iraas/web/errors.py): one status per type, a subclass
answering as its nearest listed ancestor, the error's details beside it, and the headers a client
acts on."""

from __future__ import annotations

import pytest

from iraas.classroom.students import InvalidStudents, TooManyStudents
from iraas.errors import InvalidRequest, NotConfigured, NotFound, ServiceError, TooLarge, UnsupportedMediaType
from iraas.web.errors import Forbidden, Unauthorized, Unavailable, http_error


@pytest.mark.parametrize(
    ("error", "status"),
    [
        (InvalidRequest("bad_wait", "wait must be a number"), 400),
        (InvalidStudents("student 0 lacks name"), 400),  # a subclass: its ancestor's status
        (Unauthorized("unauthorized", "needs a key"), 401),
        (Forbidden("forbidden", "not that key"), 403),
        (NotFound("not_found", "no image"), 404),
        (TooLarge("too_large", "over 10 MiB"), 413),
        (TooManyStudents("too_many_students", "over 5,000"), 413),
        (UnsupportedMediaType("unsupported_media_type", "text/plain"), 415),
        (NotConfigured("IRAAS_STUDENTS_TABLE is not set"), 503),
        (Unavailable("stopping", "try again", retry_after_s=10), 503),
        (ServiceError("odd", "a domain error of no listed kind"), 500),
    ],
)
def test_each_kind_of_error_has_its_status_and_the_same_json_shape(error: ServiceError, status: int) -> None:
    answer = http_error(error)
    assert answer.status == status
    assert answer.body == {"error": {"code": error.code, "message": error.message}}


def test_details_go_beside_the_error_and_retry_after_with_a_503() -> None:
    answer = http_error(Unavailable("stopping", "queued: GET it later", retry_after_s=10, id="abc", status="queued"))
    assert answer.body == {"id": "abc", "status": "queued", "error": {"code": "stopping", "message": "queued: GET it later"}}
    assert answer.headers == {"Retry-After": "10"}


def test_a_missing_key_says_which_header_carries_one() -> None:
    assert http_error(Unauthorized("unauthorized", "needs a key")).headers == {"WWW-Authenticate": 'ApiKey header="x-api-key"'}
    assert http_error(Forbidden("forbidden", "not that key")).headers == {}
