"""tests/unit/conftest.py's guard: a unit test that opens a network connection, starts a process or
enters moto fails, saying what it tried; a Unix socket, a bound (not connected) socket and threads
are left alone."""

from __future__ import annotations

import contextlib
import multiprocessing
import os
import socket
import subprocess
import threading

import moto
import pytest

REFUSAL = pytest.fail.Exception  # a test failure, which code that catches OSError cannot swallow


def test_a_network_connection_is_refused(refused: list[str]) -> None:
    with pytest.raises(REFUSAL, match=r"opened a network connection to \('127.0.0.1', 9\); move it to tests/integration"):
        socket.create_connection(("127.0.0.1", 9))
    with socket.socket() as sock, pytest.raises(REFUSAL, match="network connection"):
        sock.connect(("127.0.0.1", 9))
    with socket.socket() as sock, pytest.raises(REFUSAL, match="network connection"):
        sock.connect_ex(("127.0.0.1", 9))
    assert len(refused) == 3
    refused.clear()  # seen: the test itself passes


def test_a_process_is_refused(refused: list[str]) -> None:
    with pytest.raises(REFUSAL, match=r"started a process: \['true'\]"):
        subprocess.run(["true"])
    with pytest.raises(REFUSAL, match="forked a process"):
        os.fork()
    with pytest.raises(REFUSAL, match="started a process"):
        multiprocessing.get_context("spawn").Process(target=print).start()
    assert len(refused) == 3
    refused.clear()


def test_moto_is_refused(refused: list[str]) -> None:
    with pytest.raises(REFUSAL, match="entered moto's mock_aws"), moto.mock_aws():
        pass
    assert refused == ["entered moto's mock_aws"]
    refused.clear()


def test_a_refusal_in_a_thread_or_swallowed_by_the_code_is_noted(refused: list[str]) -> None:
    def swallowing() -> None:
        with contextlib.suppress(BaseException):  # what careless code does
            socket.create_connection(("127.0.0.1", 9))

    thread = threading.Thread(target=swallowing)
    thread.start()
    thread.join()
    # What the guard noted fails the test when it ends (tests/unit/conftest.py's pytest_runtest_call).
    assert refused == ["opened a network connection to ('127.0.0.1', 9)"]
    refused.clear()


def test_what_stays_on_this_machine_is_allowed(tmp_path) -> None:
    with socket.socket() as listening:  # binding a port is not a connection
        listening.bind(("127.0.0.1", 0))
    with socket.socket(socket.AF_UNIX) as server, socket.socket(socket.AF_UNIX) as client:
        server.bind(str(tmp_path / "s"))
        server.listen()
        client.connect(str(tmp_path / "s"))
    ran = []
    thread = threading.Thread(target=ran.append, args=[1])
    thread.start()
    thread.join()
    assert ran == [1]
