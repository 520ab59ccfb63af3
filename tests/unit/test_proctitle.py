"""iraas/proctitle.py: what `ps` calls each process of IRaaS; the stack only where the command line
leaves room (tests/integration/test_proctitle.py sets titles in real processes)."""

from __future__ import annotations

import sys

import pytest

from iraas import proctitle
from iraas.proctitle import (
    endpoint_title,
    fit,
    function_title,
    stack_of,
    up_title,
    web_title,
    worker_title,
    zygote_forks,
    zygote_title,
)


@pytest.mark.parametrize(
    ("title", "expected"),
    [
        (up_title("127.0.0.1:8000"), "iraas up 127.0.0.1:8000"),
        (endpoint_title("127.0.0.1:5123"), "iraas endpoint 127.0.0.1:5123"),
        (web_title("0.0.0.0:8000"), "iraas web 0.0.0.0:8000"),
        (zygote_title("worker"), "iraas zygote worker"),
        (worker_title("local-3"), "iraas worker local-3"),
        (worker_title(None), "iraas worker"),  # on EC2: one per instance, no id of its own
        (function_title("FaceRecognitionFunction"), "iraas function FaceRecognitionFunction"),
        (function_title("FaceRecognitionFunction", "sqs"), "iraas function FaceRecognitionFunction sqs"),
        (function_title("CallbackFunction", "sqs"), "iraas function CallbackFunction sqs"),
        (zygote_title(zygote_forks("FaceRecognitionFunction")), "iraas zygote FaceRecognitionFunction"),
        (zygote_title(zygote_forks("FaceRecognitionFunction", "sqs")), "iraas zygote FaceRecognitionFunction sqs"),
    ],
)
def test_each_process_is_named_by_what_it_is(title: str, expected: str) -> None:
    assert title == expected


def test_the_stack_is_its_iraas_home() -> None:
    assert stack_of({"IRAAS_HOME": "/srv/stack"}) == "/srv/stack"
    assert stack_of({}) is None
    assert stack_of({"IRAAS_HOME": ""}) is None


def test_the_stack_follows_the_title_where_the_command_line_leaves_room() -> None:
    title = "iraas worker local-1"
    assert fit(title, "/srv/stack", None) == "iraas worker local-1 (/srv/stack)"
    assert fit(title, "/srv/stack", len("iraas worker local-1 (/srv/stack)")) == "iraas worker local-1 (/srv/stack)"
    assert fit(title, "/srv/stack", len("iraas worker local-1 (/srv/stack)") - 1) == title  # never half a path
    assert fit(title, None, 5) == title


def test_without_setproctitle_nothing_changes(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "setproctitle", None)  # an import of it raises ImportError
    monkeypatch.setenv("SPT_NOENV", "1")  # set_title sets it: put back afterwards
    assert proctitle.set_title("iraas worker local-1") is False
