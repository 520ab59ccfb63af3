"""End to end: what users stored survives a restart of `iraas up`, a kill -9 of it, and a kill -9 of
its AWS endpoint under load; `--fresh` starts empty; a stop answers the requests it holds."""

from __future__ import annotations

import json
import os
import signal
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import psutil
import pytest
import requests

from harness.embedded import RunningStack, running_stack
from tests.support.waiting import wait_until

pytestmark = pytest.mark.slow


def csv_of(url: str, video_id: str, timeout_s: float = 240) -> str:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        answer = requests.get(f"{url}/v1/videos/{video_id}/csv", timeout=10)
        if answer.status_code == 200:
            return answer.text
        assert answer.status_code == 404, answer.text
        time.sleep(1)
    raise AssertionError(f"no CSV for video {video_id} within {timeout_s} s")


def students_of(url: str) -> list[dict]:
    answer = requests.get(f"{url}/v1/students", timeout=10)
    assert answer.status_code == 200, answer.text
    return answer.json()["students"]


def endpoint_process(stack: RunningStack) -> psutil.Process:
    """The moto server `iraas up` started (its title: iraas/proctitle.py)."""
    for child in psutil.Process(stack.process.pid).children(recursive=True):
        if " ".join(child.cmdline()).startswith("iraas endpoint "):
            return child
    raise AssertionError("no endpoint process under iraas up")


def test_results_csvs_and_students_survive_a_kill_9_of_iraas_up_and_fresh_starts_empty(
    tmp_path: Path, model_path, classroom, photo
):
    home = tmp_path / "home"
    env = {"IRAAS_LOCAL_FUNCTION_CONCURRENCY": "1"}
    with running_stack(home, env, workers=1) as stack:
        records = tmp_path / "students.json"
        records.write_text(json.dumps(classroom.students))
        stack.cli("students", "import", str(records))
        for name, photos in classroom.enrolled.items():
            stack.cli("faces", "enroll", name, *map(str, photos))
        image = requests.post(
            f"{stack.url}/v1/images?wait=60&name=kept.jpg", data=photo.path.read_bytes(),
            headers={"Content-Type": "image/jpeg"}, timeout=90,
        )
        assert image.status_code == 200, image.text
        video_name = next(iter(classroom.videos))
        video = requests.post(
            f"{stack.url}/v1/videos?name={video_name}.mp4", data=classroom.videos[video_name].read_bytes(),
            headers={"Content-Type": "video/mp4"}, timeout=60,
        )
        assert video.status_code == 202, video.text
        video_id = video.json()["video"]
        csv = csv_of(stack.url, video_id)
        students = students_of(stack.url)
        assert csv == classroom.expected_csv[video_name]
        # A crash of iraas up itself: no orderly stop, no chance to save anything at the end.
        stack.process.send_signal(signal.SIGKILL)
        stack.process.wait()
        wait_until(lambda: not any(line.startswith("iraas endpoint ") for line in _stack_processes(home)),
                   timeout_s=15, what="the endpoint to go with iraas up")

    started = time.time()
    with running_stack(home, env, workers=1) as again:
        assert any("restored" in line for line in again.startup), again.startup
        # Ready means this run's worker is warm, not that the last run's marker is still there.
        assert (home / "ready" / "local-1").stat().st_mtime >= started
        kept = requests.get(f"{again.url}/v1/images/{image.json()['id']}", timeout=10)
        assert kept.status_code == 200 and kept.json() == image.json()
        assert csv_of(again.url, video_id, timeout_s=10) == csv
        assert students_of(again.url) == students

    with running_stack(home, env, workers=1, args=("--fresh",)) as fresh:
        assert any("--fresh: removed" in line for line in fresh.startup), fresh.startup
        assert requests.get(f"{fresh.url}/v1/images/{image.json()['id']}", timeout=10).status_code == 404
        assert students_of(fresh.url) == []


def _stack_processes(home: Path) -> list[str]:
    """What `ps` shows for the running processes of the stack in ``home`` (not zombies): their titles
(iraas/proctitle.py keeps /proc/<pid>/environ, and so their IRAAS_HOME, readable)."""
    found = []
    for process in psutil.process_iter(["cmdline", "environ", "status"]):
        info = process.info
        if info["status"] != psutil.STATUS_ZOMBIE and (info["environ"] or {}).get("IRAAS_HOME") == str(home):
            found.append(" ".join(info["cmdline"] or []))
    return found


def test_a_kill_9_of_the_endpoint_under_load_loses_no_accepted_request(
    tmp_path: Path, model_path, imagenet_sample, classroom
):
    """Every request the web tier accepted (202) before, during and after the endpoint's crash is
    answered, once (one stored result each); the web tier, the workers and the face runners resume."""
    photos = [p.path.read_bytes() for p in imagenet_sample[:40]]
    video_bytes = next(iter(classroom.videos.values())).read_bytes()
    with running_stack(tmp_path / "home", workers=2) as stack:
        accepted: dict[str, str] = {}  # id -> name
        refused: list[int] = []
        lock = threading.Lock()

        def submit(i: int) -> None:
            name = f"load_{i:03d}.jpg"
            try:
                answer = requests.post(f"{stack.url}/v1/images?wait=0&name={name}", data=photos[i % len(photos)],
                                       headers={"Content-Type": "image/jpeg"}, timeout=60)
            except requests.RequestException:
                return
            with lock:
                if answer.status_code == 202:
                    accepted[answer.json()["id"]] = name
                else:
                    assert answer.status_code == 503, answer.text  # unavailable: nothing was accepted
                    assert answer.headers.get("Retry-After")
                    refused.append(i)

        moto = endpoint_process(stack)
        with ThreadPoolExecutor(max_workers=8) as pool:
            before = [pool.submit(submit, i) for i in range(40)]
            while sum(f.done() for f in before) < 20:
                time.sleep(0.02)
            os.kill(moto.pid, signal.SIGKILL)  # while requests are arriving and being worked on
            for future in before:
                future.result()
            wait_until(lambda: any("endpoint is back" in line for line in stack.output()), timeout_s=60,
                       what="iraas up to restart its endpoint")
            for future in [pool.submit(submit, i) for i in range(40, 80)]:
                future.result()
        print(f"{len(accepted)} accepted, {len(refused)} refused (503) around the endpoint's crash")
        assert len(accepted) >= 40, f"only {len(accepted)} accepted, {len(refused)} refused"

        def all_answered() -> bool:
            return all(requests.get(f"{stack.url}/v1/images/{i}", timeout=10).status_code == 200 for i in list(accepted))

        wait_until(all_answered, timeout_s=180, what="every accepted request to be answered", poll_s=2)
        # The face function's runners resumed too: a video sent now gets its CSV (nobody enrolled).
        video = requests.post(f"{stack.url}/v1/videos?name=after.mp4", data=video_bytes,
                              headers={"Content-Type": "video/mp4"}, timeout=60)
        assert video.status_code == 202, video.text
        assert csv_of(stack.url, video.json()["video"]).splitlines()[0].startswith("name")
        s3 = stack.client("s3")
        results = [o["Key"] for page in s3.get_paginator("list_objects_v2").paginate(
            Bucket=stack.resources["ImageOutputBucket"], Prefix="results/") for o in page.get("Contents", [])]
        by_name: dict[str, list[str]] = {}
        for key in results:  # results/<name>/<id>.json
            _, name, leaf = key.split("/")
            by_name.setdefault(name, []).append(leaf.removesuffix(".json"))
        assert all(len(ids) == 1 for ids in by_name.values()), "a request answered twice"
        for request_id, name in accepted.items():
            assert by_name.get(name) == [request_id], f"{name} ({request_id}) has results {by_name.get(name)}"


@pytest.mark.parametrize("web", ["chalice", "gunicorn"])
def test_sigterm_answers_every_request_it_holds_and_the_next_start_answers_the_rest(
    tmp_path: Path, model_path, imagenet_sample, web: str
):
    """The requests a stopping web tier still holds get 503 + Retry-After with their id (not a cut
    connection), the stack is gone within 10 s, and the next start answers them at their id."""
    home = tmp_path / "home"
    photos = [p.path.read_bytes() for p in imagenet_sample[:20]]

    def classify(i: int) -> requests.Response:
        return requests.post(f"{stack.url}/v1/images?wait=30&name=held_{i:02d}.jpg", data=photos[i],
                             headers={"Content-Type": "image/jpeg"}, timeout=60)

    with running_stack(home, workers=1, args=("--web", web)) as stack:
        assert classify(0).status_code == 200
        zygote = next(p for p in psutil.Process(stack.process.pid).children()
                      if " ".join(p.cmdline()).startswith(f"iraas zygote worker ({home})"))
        [worker] = zygote.children()  # the one worker, forked by the image workers' zygote
        worker.suspend()  # a worker that cannot answer in time: every waiting request is held to the end
        with ThreadPoolExecutor(max_workers=19) as pool:
            held = [pool.submit(classify, i) for i in range(1, 20)]
            time.sleep(1.5)  # all of them are inside the web tier, waiting
            stopped_at = time.monotonic()
            stack.process.send_signal(signal.SIGTERM)
            answers = [future.result() for future in held]  # none raises: no connection is cut
        stack.process.wait(timeout=15)
        stop_s = time.monotonic() - stopped_at
        assert stop_s < 10, f"iraas up took {stop_s:.1f} s to stop"
        for answer in answers:
            assert answer.status_code == 503, answer.text
            assert answer.headers["Retry-After"] and answer.json()["error"]["code"] == "stopping"
        ids = [answer.json()["id"] for answer in answers]

    with running_stack(home, workers=1) as again:
        def answered() -> bool:
            return all(requests.get(f"{again.url}/v1/images/{i}", timeout=10).status_code == 200 for i in ids)

        wait_until(answered, timeout_s=120, what="the held requests to be answered after the restart", poll_s=1)
