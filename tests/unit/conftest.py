"""The unit tier's rule, enforced: a unit test touches no network, no moto and no process.

A test that needs any of them is an integration test (``tests/integration``). Here it fails at once,
with a message that says what it tried, instead of passing only where a port is free, a tool is
installed or there is time to spare. Refused while each unit test is set up, runs and is torn down
(fixtures of every scope included, which an autouse fixture would not cover: pytest sets up a
module's or the session's fixtures before a test's own):

- a network connection: ``socket.socket.connect`` / ``connect_ex`` and ``socket.create_connection``
  (what urllib3, botocore, http.client and the standard library's clients go through). A Unix socket
  is allowed: it never leaves the machine;
- a process: ``subprocess.Popen`` (``run``, ``check_output`` and asyncio's too), ``os.fork``, and a
  ``multiprocessing`` process's ``start``;
- moto: ``moto.mock_aws`` (as a decorator, a ``with`` block or ``start()``).

What is refused is raised as a test failure (not an ``OSError`` that the code under test might catch
and answer, as a client does for "connection refused"), and noted, so a refusal in a thread or one
the code swallowed still fails the test when it ends.
"""

from __future__ import annotations

import multiprocessing.process
import os
import socket
import subprocess
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

import pytest
from moto.core.models import MockAWS

REFUSED = pytest.StashKey[list[str]]()


@contextmanager
def _refusing(refused: list[str]) -> Iterator[None]:
    def refuse(what: str) -> None:
        refused.append(what)
        pytest.fail(f"a unit test {what}; move it to tests/integration (tests/unit/conftest.py says why)", pytrace=False)

    def connecting(original: Callable[..., Any]) -> Callable[..., Any]:
        def connect(sock: socket.socket, address: Any) -> Any:
            if sock.family == getattr(socket, "AF_UNIX", None):
                return original(sock, address)
            refuse(f"opened a network connection to {address!r}")

        return connect

    def create_connection(address: Any, *args: Any, **kwargs: Any) -> None:
        refuse(f"opened a network connection to {address!r}")

    def popen(self: subprocess.Popen, args: Any, *more: Any, **kwargs: Any) -> None:
        self._child_created = False  # what Popen.__del__ reads
        refuse(f"started a process: {args!r}")

    def fork() -> int:
        refuse("forked a process")
        return -1  # not reached

    def start_process(self: multiprocessing.process.BaseProcess) -> None:
        refuse(f"started a process: {self!r}")

    def enter_moto(self: MockAWS, *args: Any, **kwargs: Any) -> None:
        refuse("entered moto's mock_aws")

    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(socket.socket, "connect", connecting(socket.socket.connect))
        patch.setattr(socket.socket, "connect_ex", connecting(socket.socket.connect_ex))
        patch.setattr(socket, "create_connection", create_connection)
        patch.setattr(subprocess.Popen, "__init__", popen)
        patch.setattr(os, "fork", fork)
        patch.setattr(multiprocessing.process.BaseProcess, "start", start_process)
        patch.setattr(MockAWS, "start", enter_moto)
        yield


def _refused(item: pytest.Item) -> list[str]:
    return item.stash.setdefault(REFUSED, [])


@pytest.hookimpl(wrapper=True)
def pytest_runtest_setup(item: pytest.Item) -> Iterator[None]:
    with _refusing(_refused(item)):
        return (yield)


@pytest.hookimpl(wrapper=True)
def pytest_runtest_call(item: pytest.Item) -> Iterator[None]:
    with _refusing(_refused(item)):
        result = yield
    if _refused(item):  # caught by the code under test, or raised in another thread
        pytest.fail(f"a unit test {'; '.join(_refused(item))}; move it to tests/integration", pytrace=False)
    return result


@pytest.hookimpl(wrapper=True)
def pytest_runtest_teardown(item: pytest.Item) -> Iterator[None]:
    with _refusing(_refused(item)):
        return (yield)


@pytest.fixture
def refused(request: pytest.FixtureRequest) -> list[str]:
    """What the guard refused during this test so far (for the test of the guard itself)."""
    return _refused(request.node)
