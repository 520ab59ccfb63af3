"""End to end: under `iraas up`, `ps` tells its processes apart (iraas/proctitle.py): each worker
shows `iraas worker local-N (<home>)`, each function runner `iraas function <Function> [sqs] (<home>)`,
and the zygotes they are forked from say what they fork, instead of all showing the zygote's
`python -m iraas.local.zygote ...`."""

from __future__ import annotations

import contextlib
from pathlib import Path

import psutil
import pytest

from harness.embedded import running_stack
from tests.support.waiting import wait_until

pytestmark = pytest.mark.slow

SECRET = "s" * 32  # a webhook secret: the callback function's runners start too


def title(process: psutil.Process) -> str:
    """What `ps` shows for it (setproctitle pads the command line with NULs: psutil splits those off)."""
    return " ".join(process.cmdline()).strip()


def titles_under(root: int) -> dict[int, tuple[str, int]]:
    """pid -> (title, parent pid) for ``root`` and every live process below it."""
    found = {}
    for process in [psutil.Process(root), *psutil.Process(root).children(recursive=True)]:
        with contextlib.suppress(psutil.Error):  # a process that ended meanwhile
            if process.status() != psutil.STATUS_ZOMBIE:
                found[process.pid] = (title(process), process.ppid())
    return found


def test_ps_names_each_worker_function_runner_and_zygote_of_iraas_up(tmp_path: Path, model_path) -> None:
    home = tmp_path / "home"
    env = {"IRAAS_WEBHOOK_SECRET": SECRET, "IRAAS_LOCAL_FUNCTION_CONCURRENCY": "1"}
    with running_stack(home, env, workers=2) as stack:
        port = stack.url.rsplit(":", 1)[1]
        face, segments, callbacks = (f"FaceRecognitionFunction ({home})", f"FaceRecognitionFunction sqs ({home})",
                                     f"CallbackFunction sqs ({home})")
        expected_runners = {f"iraas function {face}", f"iraas function {segments}", f"iraas function {callbacks}"}

        def runners_up() -> bool:  # each function's zygote preloads, then forks its warm runner
            shown = {t for t, _ in titles_under(stack.process.pid).values()}
            return expected_runners <= shown

        wait_until(runners_up, timeout_s=180, what="a warm runner of each function", poll_s=0.5)
        processes = titles_under(stack.process.pid)
        by_title: dict[str, list[int]] = {}
        for pid, (shown, _) in processes.items():
            by_title.setdefault(shown, []).append(pid)

        def children_of(pid: int) -> set[str]:
            return {shown for shown, parent in processes.values() if parent == pid}

        # iraas up itself and what it starts (the stack where their command lines leave room for it).
        assert processes[stack.process.pid][0] in (f"iraas up 127.0.0.1:{port}", f"iraas up 127.0.0.1:{port} ({home})")
        [endpoint] = [t for t in by_title if t.startswith("iraas endpoint 127.0.0.1:")]
        assert endpoint.endswith(f" ({home})")
        assert [t for t in by_title if t.startswith("iraas web ")] in (
            [f"iraas web 127.0.0.1:{port}"], [f"iraas web 127.0.0.1:{port} ({home})"]
        )
        # The image workers: both, forked from the zygote that says it forks workers.
        [zygote] = by_title[f"iraas zygote worker ({home})"]
        assert children_of(zygote) == {f"iraas worker local-1 ({home})", f"iraas worker local-2 ({home})"}
        assert sorted(t for t in by_title if t.startswith("iraas worker")) == [
            f"iraas worker local-1 ({home})", f"iraas worker local-2 ({home})"
        ]
        # A zygote per function and event source, each forking runners that name the function.
        for forks in (face, segments, callbacks):
            [function_zygote] = by_title[f"iraas zygote {forks}"]
            assert children_of(function_zygote) == {f"iraas function {forks}"}
        # Nothing left showing a bare interpreter's command line.
        assert all(t.startswith("iraas ") for t in by_title), sorted(by_title)
