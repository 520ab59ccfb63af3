"""The embedded endpoint keeps HTTP/1.1 connections open (iraas/local/keep_alive.py), as AWS's
endpoints do, and still answers every request on a connection whole and in order."""

from __future__ import annotations

import http.client
import logging
import socket
import urllib.parse
from collections.abc import Iterator
from typing import Any

import boto3
import moto  # noqa: F401 - moto first, so that it patches botocore before any client exists
import pytest
from botocore.config import Config

from iraas.aws import local_credentials_env
from iraas.local.motoserver import MotoServer

REGION = "us-east-1"
# What an S3 ListBuckets needs from a client for moto to answer it (moto does not check signatures).
S3_HEADERS = (
    "Host: s3.amazonaws.com\r\n"
    "Authorization: AWS4-HMAC-SHA256 Credential=testing/20261201/us-east-1/s3/aws4_request, "
    "SignedHeaders=host, Signature=0\r\n"
)


@pytest.fixture(scope="module")
def endpoint() -> Iterator[str]:
    with MotoServer() as running:
        yield running.url


def _connect(endpoint: str) -> socket.socket:
    host, port = urllib.parse.urlparse(endpoint).netloc.split(":")
    return socket.create_connection((host, int(port)), timeout=10)


def _answer(sock: socket.socket, method: str = "GET") -> tuple[http.client.HTTPResponse, bytes]:
    response = http.client.HTTPResponse(sock, method=method)
    response.begin()
    return response, response.read()


def _closed_by_server(sock: socket.socket) -> bool:
    sock.settimeout(5)
    try:
        return sock.recv(1) == b""
    except ConnectionResetError:
        return True


def test_requests_sent_back_to_back_are_all_answered_on_one_connection(endpoint: str) -> None:
    # Each request goes out the moment the answer before it is read: werkzeug's own drain after
    # an answer would have swallowed it and left this client waiting.
    with _connect(endpoint) as sock:
        for _ in range(5):
            sock.sendall(f"GET / HTTP/1.1\r\n{S3_HEADERS}\r\n".encode())
            response, body = _answer(sock)
            assert response.status == 200 and b"ListAllMyBucketsResult" in body
            assert response.getheader("Connection") is None  # not "close"


def test_a_body_the_endpoint_does_not_read_does_not_spill_into_the_next_request(endpoint: str) -> None:
    unread = b"x" * 100_000  # ListBuckets reads no body; it must be skipped, not parsed as a request
    with _connect(endpoint) as sock:
        sock.sendall(f"GET / HTTP/1.1\r\n{S3_HEADERS}Content-Length: {len(unread)}\r\n\r\n".encode() + unread)
        first, _ = _answer(sock)
        sock.sendall(f"GET / HTTP/1.1\r\n{S3_HEADERS}\r\n".encode())
        second, body = _answer(sock)
    assert (first.status, second.status) == (200, 200)
    assert b"ListAllMyBucketsResult" in body


@pytest.mark.parametrize(
    ("request_line", "extra_headers", "body"),
    [
        ("GET / HTTP/1.0", "", b""),  # HTTP/1.0 has no keep-alive here
        ("GET / HTTP/1.1", "Connection: close\r\n", b""),  # the client asks for a close
        ("PUT /keep-alive-chunked/object HTTP/1.1", "Transfer-Encoding: chunked\r\n", b"3\r\nabc\r\n0\r\n\r\n"),
    ],
    ids=["http-1.0", "connection-close", "chunked-body"],
)
def test_other_requests_are_answered_and_their_connection_closed(
    endpoint: str, request_line: str, extra_headers: str, body: bytes
) -> None:
    if body:
        _s3(endpoint).create_bucket(Bucket="keep-alive-chunked")
    with _connect(endpoint) as sock:
        sock.sendall(f"{request_line}\r\n{S3_HEADERS}{extra_headers}\r\n".encode() + body)
        response, _ = _answer(sock)
        assert response.status < 500
        assert _closed_by_server(sock)


def _s3(endpoint: str, **config: Any) -> Any:
    creds = local_credentials_env()
    return boto3.client(
        "s3", endpoint_url=endpoint, region_name=REGION,
        aws_access_key_id=creds["AWS_ACCESS_KEY_ID"], aws_secret_access_key=creds["AWS_SECRET_ACCESS_KEY"],
        config=Config(s3={"addressing_style": "path"}, retries={"max_attempts": 1}, **config),
    )


def test_a_boto3_client_makes_its_calls_over_one_connection(endpoint: str, caplog: pytest.LogCaptureFixture) -> None:
    s3 = _s3(endpoint, max_pool_connections=1)
    s3.create_bucket(Bucket="keep-alive")
    with caplog.at_level(logging.DEBUG, logger="urllib3.connectionpool"):
        for n in range(20):
            s3.put_object(Bucket="keep-alive", Key=f"k{n}", Body=b"{}", IfNoneMatch="*")
            assert s3.get_object(Bucket="keep-alive", Key=f"k{n}")["Body"].read() == b"{}"
        s3.head_object(Bucket="keep-alive", Key="k0")  # an answer with no body
    # urllib3 says so each time it opens a connection, or reopens one the server closed.
    opened = [r for r in caplog.records if r.getMessage().startswith(("Starting new HTTP", "Resetting dropped"))]
    assert len(opened) <= 1  # the first call may open the pool's connection; none after it
