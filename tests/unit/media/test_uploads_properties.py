"""Fuzzing the upload parser (iraas/media/uploads.py): any body, multipart or not, is an Upload or the project's own 4xx.

``parse_upload`` is what ``POST /`` and ``POST /v1/images`` run on a body before anything is queued:
whatever the bytes, it answers an :class:`Upload` or raises :class:`ServiceError` with a 4xx status
(never another exception, never a hang), and a well-formed multipart form round-trips: the file
part's bytes come back unchanged and its name comes back through ``safe_name``.
"""

from __future__ import annotations

import io
import re

import pytest
from hypothesis import HealthCheck, assume, example, given, settings
from hypothesis import strategies as st
from PIL import Image

from iraas.errors import ServiceError
from iraas.media.uploads import UploadLimits, _file_from_multipart, parse_upload
from iraas.names import MAX_NAME_CHARS, safe_name
from iraas.web.errors import http_error

pytestmark = pytest.mark.timeout(120)

FUZZ = settings(
    max_examples=300,
    deadline=None,
    derandomize=True,
    database=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)
LIMITS = UploadLimits(max_image_bytes=64 * 1024, max_image_pixels=4096)
# What parse_upload may answer: the 400s, 413s and the 415 of docs/api.md's error table.
UPLOAD_ERRORS = {
    "no_file", "bad_multipart", "not_an_image", "undecodable", "too_large", "too_many_pixels",
    "unsupported_media_type",
}
SAFE_NAME = re.compile(r"[A-Za-z0-9-][A-Za-z0-9._-]*")  # safe_name: no path, no leading dot


def _png(size: tuple[int, int] = (8, 6)) -> bytes:
    out = io.BytesIO()
    Image.linear_gradient("L").resize(size).save(out, "PNG")
    return out.getvalue()


PNG = _png()

# RFC 2046's boundary characters; a boundary is 1-70 of them and does not end in a space.
BCHARS = "0123456789abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ'()+_,-./:=?"
boundaries = st.text(BCHARS + " ", min_size=1, max_size=69).map(lambda b: b + "x")
# What a user can name a file: any text; "%" is left out because browsers' quoting of the header
# (WHATWG: %0D, %0A, %22) cannot tell a literal "%22" from a quote.
filenames = st.text(st.characters(codec="utf-8", exclude_characters="%"), max_size=120)
field_names = st.text(st.characters(codec="ascii", exclude_characters='"%\r\n\\'), min_size=1, max_size=20)


def _quote(value: str) -> str:
    """A Content-Disposition parameter as browsers quote it (the WHATWG form)."""
    return '"' + value.replace("\r", "%0D").replace("\n", "%0A").replace('"', "%22") + '"'


def multipart_body(boundary: str, parts: list[tuple[str, str | None, bytes]]) -> bytes:
    """A multipart/form-data body of ``(field name, file name or None, bytes)`` parts, as a browser sends it."""
    out = b""
    for name, filename, data in parts:
        disposition = f"form-data; name={_quote(name)}"
        if filename is not None:
            disposition += f"; filename={_quote(filename)}"
        head = f"--{boundary}\r\nContent-Disposition: {disposition}\r\n"
        if filename is not None:
            head += "Content-Type: application/octet-stream\r\n"
        out += head.encode() + b"\r\n" + data + b"\r\n"
    return out + f"--{boundary}--\r\n".encode()


def content_type(boundary: str) -> str:
    return f'multipart/form-data; boundary="{boundary}"'


def _upload_or_4xx(body: bytes, ctype: str | None, name: str | None = None) -> None:
    try:
        upload = parse_upload(body, ctype, name, LIMITS)
    except ServiceError as exc:
        assert 400 <= http_error(exc).status < 500, exc
        assert exc.code in UPLOAD_ERRORS, exc
    else:
        assert upload.data
        assert len(upload.data) <= LIMITS.max_image_bytes
        assert SAFE_NAME.fullmatch(upload.name), upload.name


@FUZZ
@given(body=st.binary(max_size=2048), boundary=boundaries)
@example(body=b"--x\r\n\r\n--x--", boundary="x")
@example(body=b"--x\r\nContent-Disposition: form-data; name=f; filename=a\r\n\r\n" + PNG + b"\r\n--x--", boundary="x")
def test_any_bytes_as_multipart_are_an_upload_or_a_4xx(body: bytes, boundary: str) -> None:
    _upload_or_4xx(body, content_type(boundary))


@FUZZ
@given(body=st.binary(max_size=256), ctype=st.one_of(st.none(), st.text(max_size=80)), name=st.one_of(st.none(), filenames))
@example(body=PNG, ctype="multipart/form-data", name=None)  # no boundary
@example(body=PNG, ctype="multipart/form-data; boundary=", name=None)
@example(body=PNG, ctype="IMAGE/PNG; charset=x", name="../../etc/passwd")
def test_any_content_type_is_an_upload_or_a_4xx(body: bytes, ctype: str | None, name: str | None) -> None:
    _upload_or_4xx(body, ctype, name)


@st.composite
def mutated_forms(draw: st.DrawFn) -> tuple[bytes, str]:
    """A well-formed form around a real PNG, then a few bytes flipped, inserted, deleted or cut."""
    boundary = draw(boundaries)
    parts = [(draw(field_names), None, draw(st.binary(max_size=32))) for _ in range(draw(st.integers(0, 2)))]
    body = bytearray(multipart_body(boundary, [*parts, (draw(field_names), draw(filenames), PNG)]))
    for _ in range(draw(st.integers(1, 3))):
        pos = draw(st.integers(0, len(body) - 1))
        op = draw(st.sampled_from(["flip", "insert", "delete", "truncate", "crlf"]))
        if op == "flip":
            body[pos] ^= 1 << draw(st.integers(0, 7))
        elif op == "insert":
            body[pos:pos] = draw(st.binary(min_size=1, max_size=8))
        elif op == "delete":
            del body[pos : pos + draw(st.integers(1, 16))]
        elif op == "crlf":
            body[pos:pos] = b"\r\n--" + boundary.encode()
        else:
            del body[pos:]
        if not body:
            break
    return bytes(body), boundary


@FUZZ
@given(form=mutated_forms())
def test_a_damaged_form_is_an_upload_or_a_4xx(form: tuple[bytes, str]) -> None:
    body, boundary = form
    _upload_or_4xx(body, content_type(boundary))


@FUZZ
@given(
    boundary=boundaries,
    filename=filenames,
    data=st.binary(min_size=1, max_size=512),
    before=st.lists(st.tuples(field_names, st.binary(max_size=32)), max_size=3),
)
@example(boundary="x", filename="C:\\photos\\my cat.JPG", data=b"\r\n--y\r\n", before=[])
@example(boundary="b", filename='a"b\r\nc.png', data=b"--b-", before=[("a", b"--b")])
def test_the_file_part_round_trips(
    boundary: str, filename: str, data: bytes, before: list[tuple[str, bytes]]
) -> None:
    """The first file part comes back byte for byte, after any text fields, whatever its name."""
    delimiter = b"\r\n--" + boundary.encode()
    assume(all(delimiter not in b"\r\n" + part for _, part in before))  # a part never holds its delimiter
    assume(delimiter not in b"\r\n" + data)
    body = multipart_body(boundary, [*((name, None, part) for name, part in before), ("file", filename, data)])
    got_name, got_data = _file_from_multipart(body, boundary, LIMITS)
    assert got_data == data
    # Windows paths (C:\dir\name) are cut to their last part by the parser, as safe_name does anyway.
    assert safe_name(got_name) == safe_name(filename)


@FUZZ
@given(boundary=boundaries, filename=filenames, field=field_names)
def test_an_image_posted_as_a_form_is_the_upload_with_a_safe_name(boundary: str, filename: str, field: str) -> None:
    """Any field name, any file name: the upload is the image's bytes, named by safe_name."""
    upload = parse_upload(multipart_body(boundary, [(field, filename, PNG)]), content_type(boundary), None, LIMITS)
    assert upload.data == PNG
    assert (upload.info.format, upload.info.width, upload.info.height) == ("PNG", 8, 6)
    assert upload.name == safe_name(filename, default="image.png")
    assert SAFE_NAME.fullmatch(upload.name) and len(upload.name) <= MAX_NAME_CHARS


@settings(max_examples=20, deadline=None, derandomize=True, database=None)
@given(extra=st.integers(1, 4096), boundary=boundaries)
def test_a_body_over_the_limit_is_too_large_before_it_is_parsed(extra: int, boundary: str) -> None:
    body = b"\0" * (LIMITS.max_body_bytes + extra)
    with pytest.raises(ServiceError) as caught:
        parse_upload(body, content_type(boundary), None, LIMITS)
    assert (http_error(caught.value).status, caught.value.code) == (413, "too_large")
