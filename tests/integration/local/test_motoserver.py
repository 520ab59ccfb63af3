"""moto's server as a child process: start, answer, stop, and fail clearly."""

from __future__ import annotations

import socket
import urllib.request

import boto3
import pytest

from iraas.aws import local_credentials_env
from iraas.local.motoserver import MotoServer, MotoServerError


def _port_open(url: str) -> bool:
    host, port = url.removeprefix("http://").split(":")
    with socket.socket() as sock:
        sock.settimeout(0.5)
        return sock.connect_ex((host, int(port))) == 0


def test_start_answers_and_stop_frees_the_port() -> None:
    server = MotoServer()
    url = server.start()
    try:
        assert url.startswith("http://127.0.0.1:") and server.url == url and server.running
        assert server.start() == url  # already running: same server
        with urllib.request.urlopen(f"{url}/moto-api/config", timeout=5) as response:
            assert response.status in (200, 201)
        # A client with the embedded stack's fake credentials can use it.
        creds = local_credentials_env()
        sqs = boto3.client(
            "sqs",
            endpoint_url=url,
            region_name="us-east-1",
            aws_access_key_id=creds["AWS_ACCESS_KEY_ID"],
            aws_secret_access_key=creds["AWS_SECRET_ACCESS_KEY"],
        )
        assert sqs.create_queue(QueueName="q")["QueueUrl"].startswith(url)
    finally:
        server.stop()
    assert not server.running and not _port_open(url)
    with pytest.raises(MotoServerError, match="not running"):
        server.url  # noqa: B018 - the property raises
    server.stop()  # stopping twice is harmless


def test_context_manager_stops_on_error() -> None:
    with pytest.raises(RuntimeError, match="boom"), MotoServer() as server:
        url = server.url
        raise RuntimeError("boom")
    assert not _port_open(url)


def test_a_server_that_dies_reports_its_output() -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        server = MotoServer(port=port, start_timeout_s=20)
        with pytest.raises(MotoServerError, match="exited with status") as error:
            server.start()
    assert "Address already in use" in str(error.value)
    assert not server.running


def test_local_credentials_are_fake() -> None:
    env = local_credentials_env()
    assert env["AWS_ACCESS_KEY_ID"] == env["AWS_SECRET_ACCESS_KEY"] == "testing"
    env["AWS_ACCESS_KEY_ID"] = "changed"
    assert local_credentials_env()["AWS_ACCESS_KEY_ID"] == "testing"  # a fresh copy each time
