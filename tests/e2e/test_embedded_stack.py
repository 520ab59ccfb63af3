"""End to end: `iraas up` as a user runs it, real photos over real HTTP, then Ctrl-C."""

from __future__ import annotations

import json
import os
import signal
import stat
import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import boto3
import pytest
import requests

from harness.embedded import free_port, wait_for_line
from iraas.aws import local_credentials

pytestmark = pytest.mark.slow
REPO_ROOT = Path(__file__).resolve().parents[2]
PHOTOS = 20


def spawn(args: list[str], cwd: Path, env: dict[str, str]) -> subprocess.Popen:
    return subprocess.Popen(
        args, cwd=cwd, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True
    )


@pytest.fixture(scope="module")
def embedded_stack(tmp_path_factory, model_path):
    home = tmp_path_factory.mktemp("iraas-home")
    port = free_port()
    env = {**os.environ, "IRAAS_HOME": str(home), "PYTHONUNBUFFERED": "1"}
    process = spawn(
        [sys.executable, "-m", "iraas.cli", "up", "--port", str(port), "--workers", "2"], REPO_ROOT, env
    )
    try:
        wait_for_line(process, "ready on", timeout_s=180)
        yield {"url": f"http://127.0.0.1:{port}", "home": home, "process": process}
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()


def aws_clients(home: Path):
    stack = json.loads((home / "stack.json").read_text())
    session = boto3.session.Session(
        **local_credentials(), region_name=stack["region"]
    )
    s3 = session.client("s3", endpoint_url=stack["endpoint_url"])
    sqs = session.client("sqs", endpoint_url=stack["endpoint_url"])
    return stack["resources"], s3, sqs


def test_twenty_photos_sent_at_once_to_both_endpoints_are_all_answered(
    embedded_stack, imagenet_sample, classifier
):
    url = embedded_stack["url"]
    photos = imagenet_sample[1:400:20][:PHOTOS]
    expected = [c.best.label for c in classifier.classify_bytes([p.path.read_bytes() for p in photos])]

    def course(i: int) -> requests.Response:
        field = "myfile" if i % 2 else "inputFile"
        with open(photos[i].path, "rb") as f:
            return requests.post(f"{url}/", files={field: (f"course_{i:02d}.JPEG", f)}, timeout=90)

    def api(i: int) -> requests.Response:
        return requests.post(
            f"{url}/v1/images?wait=60&name=api_{i:02d}.jpg",
            data=photos[i].path.read_bytes(),
            headers={"Content-Type": "image/jpeg"},
            timeout=90,
        )

    with ThreadPoolExecutor(max_workers=2 * PHOTOS) as pool:
        course_answers = list(pool.map(course, range(PHOTOS)))
        api_answers = list(pool.map(api, range(PHOTOS)))

    for i, response in enumerate(course_answers):
        assert response.status_code == 200, response.text
        assert response.text == f"course_{i:02d}:{expected[i]}"
    results = []
    for i, response in enumerate(api_answers):
        assert response.status_code == 200, response.text
        result = response.json()
        assert (result["name"], result["label"]) == (f"api_{i:02d}.jpg", expected[i])
        assert result["top5"][0]["wnid"] == result["wnid"]
        results.append(result)
    assert sum(r["wnid"] == p.wnid for r, p in zip(results, photos, strict=False)) >= PHOTOS * 0.8

    resources, s3, sqs = aws_clients(embedded_stack["home"])
    inputs = s3.list_objects_v2(Bucket=resources["ImageInputBucket"], Prefix="inputs/")["KeyCount"]
    assert inputs == 2 * PHOTOS
    for result in results:
        key = f"results/{result['name']}/{result['id']}.json"
        stored = s3.get_object(Bucket=resources["ImageOutputBucket"], Key=key)
        assert json.loads(stored["Body"].read())["label"] == result["label"]
    names = s3.list_objects_v2(Bucket=resources["ImageOutputBucket"], Prefix="results/")["Contents"]
    assert {o["Key"].split("/")[1] for o in names} == (
        {f"course_{i:02d}.JPEG" for i in range(PHOTOS)} | {f"api_{i:02d}.jpg" for i in range(PHOTOS)}
    )
    for queue in ("RequestQueue", "RequestDeadLetterQueue"):
        attrs = sqs.get_queue_attributes(
            QueueUrl=resources[queue],
            AttributeNames=["ApproximateNumberOfMessages", "ApproximateNumberOfMessagesNotVisible"],
        )["Attributes"]
        assert attrs == {"ApproximateNumberOfMessages": "0", "ApproximateNumberOfMessagesNotVisible": "0"}

    stats = requests.get(f"{url}/v1/stats", timeout=10).json()
    assert stats["workers"]["running"] == 2 and stats["queue"]["visible"] == 0
    pending = requests.get(f"{url}/v1/images/{results[0]['id']}", timeout=10)
    assert pending.status_code == 200 and pending.json() == results[0]


def test_bad_input_over_http_gets_a_json_error(embedded_stack):
    url = embedded_stack["url"]
    response = requests.post(f"{url}/", files={"myfile": ("notes.txt", b"not an image")}, timeout=10)

    assert response.status_code == 400
    assert response.json()["error"]["code"] == "not_an_image"
    assert requests.get(f"{url}/v1/images/{'f' * 32}", timeout=10).status_code == 404


def test_chalice_local_inside_chalice_web_serves_against_the_running_stack(embedded_stack, photo):
    """The development loop: `iraas up` keeps the rest running while `chalice local` serves routes."""
    port = free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith("AWS_")}  # none needed locally
    env.update(IRAAS_HOME=str(embedded_stack["home"]), PYTHONUNBUFFERED="1")
    chalice = spawn(
        [str(Path(sys.executable).parent / "chalice"), "local", "--port", str(port), "--no-autoreload"],
        REPO_ROOT / "chalice_web",
        env,
    )
    try:
        wait_for_line(chalice, "Serving on", timeout_s=60)
        with open(photo.path, "rb") as f:
            response = requests.post(f"http://127.0.0.1:{port}/", files={"myfile": ("fish.jpg", f)}, timeout=60)
    finally:
        chalice.terminate()
        chalice.wait(timeout=10)

    assert (response.status_code, response.text) == (200, "fish:tench")


def test_the_state_folder_and_logs_are_private_to_their_owner(embedded_stack):
    """Everything the running stack wrote (state database, logs, stack.json, ready files) is 0700/0600."""
    home = embedded_stack["home"]
    written = [home, *home.rglob("*")]
    assert any(p.name == "endpoint.sqlite" for p in written) and any(p.suffix == ".log" for p in written)
    readable = [f"{p} {stat.S_IMODE(p.lstat().st_mode):o}" for p in written
                if not p.is_symlink() and p.lstat().st_mode & (stat.S_IRWXG | stat.S_IRWXO)]
    assert readable == []


def test_ctrl_c_stops_the_stack_and_everything_it_started_within_ten_seconds(embedded_stack):
    process = embedded_stack["process"]
    url = embedded_stack["url"]
    home = embedded_stack["home"]
    endpoint = json.loads((home / "stack.json").read_text())["endpoint_url"]

    started = time.monotonic()
    process.send_signal(signal.SIGINT)
    process.wait(timeout=10)

    assert time.monotonic() - started < 10
    assert process.returncode == 0
    for address in (url, endpoint):
        with pytest.raises(requests.ConnectionError):
            requests.get(address, timeout=2)
    assert not (home / "stack.json").exists()
    # Every process of the stack names it: a title `iraas ... (<home>)`, or a `--ready-file <home>/...`.
    left = subprocess.run(["pgrep", "-af", str(home)], capture_output=True, text=True)
    assert left.stdout == ""
