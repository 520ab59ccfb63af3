"""End to end: gunicorn serves openstack/wsgi.py's `application` over real HTTP, on loopback,
against moto's server provisioned from template.yaml, with a worker answering in-process."""

from __future__ import annotations

import io
import os
import random
import signal
import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import boto3
import pytest
import requests
from PIL import Image

from iraas import aws
from iraas.aws import local_credentials, local_credentials_env
from iraas.images.settings import load_image_settings, settings_env
from iraas.images.worker import Worker
from iraas.local.motoserver import MotoServer, free_port
from iraas.local.provision import provision
from iraas.local.stackfile import write_stack_file
from iraas.local.template import load_template
from iraas.web.gunicorn import gunicorn_command
from tests.support.workers import polling_in_background

pytestmark = pytest.mark.slow
REPO_ROOT = Path(__file__).resolve().parents[2]
MAX_IMAGE_BYTES = 6 * 1024 * 1024  # the server's limit here: a 5 MB image fits, 7 MB does not


def wait_healthy(url: str, process: subprocess.Popen, log: Path, timeout_s: float = 60) -> None:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise AssertionError(f"gunicorn exited with {process.returncode}:\n{log.read_text()}")
        try:
            if requests.get(f"{url}/v1/healthz", timeout=2).status_code == 200:
                return
        except requests.ConnectionError:
            pass
        time.sleep(0.2)
    raise AssertionError(f"gunicorn not healthy within {timeout_s} s:\n{log.read_text()}")


@pytest.fixture(scope="module")
def aws_endpoint(tmp_path_factory):
    """moto's server provisioned from template.yaml; yields the web tier's environment."""
    home = tmp_path_factory.mktemp("gunicorn-home")
    with MotoServer(log_path=home / "moto.log") as moto:
        session = boto3.session.Session(
            **local_credentials(), region_name="us-east-1"
        )
        resources = provision(
            load_template(REPO_ROOT / "template.yaml"), session=session, endpoint_url=moto.url, region="us-east-1"
        )
        write_stack_file(home / "stack.json", moto.url, "us-east-1", resources)
        settings = load_image_settings({"IRAAS_HOME": str(home), "IRAAS_MAX_IMAGE_BYTES": str(MAX_IMAGE_BYTES)})
        # The same IRAAS_* contract a Nova server gets in its environment file.
        env = {**local_credentials_env(), **settings_env(settings), "IRAAS_MAX_IMAGE_BYTES": str(MAX_IMAGE_BYTES)}
        yield env
    aws.reset_clients()


@pytest.fixture(scope="module")
def worker(aws_endpoint, classifier):
    """One app-tier worker polling the request queue from this process."""
    settings = load_image_settings(aws_endpoint)
    with polling_in_background(Worker(settings, classifier)):
        yield settings


@pytest.fixture(scope="module")
def gunicorn_url(aws_endpoint, tmp_path_factory):
    """gunicorn with openstack/gunicorn.conf.py, exactly as `iraas up --web gunicorn` starts it."""
    port = free_port()
    log = tmp_path_factory.mktemp("gunicorn-log") / "gunicorn.log"
    env = {k: v for k, v in os.environ.items() if not k.startswith(("AWS_", "IRAAS_"))}
    env.update(aws_endpoint)
    with open(log, "wb") as out:
        process = subprocess.Popen(
            gunicorn_command("127.0.0.1", port), cwd=REPO_ROOT, env=env, stdout=out, stderr=subprocess.STDOUT
        )
    url = f"http://127.0.0.1:{port}"
    try:
        wait_healthy(url, process, log)
        yield url
    finally:
        process.terminate()
        process.wait(timeout=15)


def noise_png(size_bytes: int) -> bytes:
    """A PNG of random pixels (it does not compress) of at least ``size_bytes``."""
    side = int((size_bytes / 3) ** 0.5) + 8
    pixels = random.Random(7).randbytes(side * side * 3)
    buffer = io.BytesIO()
    Image.frombytes("RGB", (side, side), pixels).save(buffer, format="PNG", compress_level=1)
    return buffer.getvalue()


def test_health_and_stats_answer_over_http(gunicorn_url):
    assert requests.get(f"{gunicorn_url}/v1/healthz", timeout=10).json() == {"status": "ok"}
    stats = requests.get(f"{gunicorn_url}/v1/stats", timeout=10)
    assert stats.status_code == 200 and stats.headers["Content-Type"] == "application/json"
    assert {"visible", "in_flight"} <= stats.json()["queue"].keys()


def test_a_raw_image_is_answered_with_its_label_and_then_readable_by_id(gunicorn_url, worker, photo):
    response = requests.post(
        f"{gunicorn_url}/v1/images?wait=30&name=fish.jpg",
        data=photo.path.read_bytes(),
        headers={"Content-Type": "image/jpeg"},
        timeout=60,
    )

    assert response.status_code == 200, response.text
    result = response.json()
    assert (result["name"], result["label"], result["wnid"]) == ("fish.jpg", "tench", "n01440764")
    again = requests.get(f"{gunicorn_url}/v1/images/{result['id']}", timeout=10)
    assert again.status_code == 200 and again.json() == result


def test_the_course_endpoint_answers_a_multipart_upload_as_plain_text(gunicorn_url, worker, photo):
    with open(photo.path, "rb") as f:
        response = requests.post(f"{gunicorn_url}/", files={"myfile": ("test_07.JPEG", f)}, timeout=60)

    assert (response.status_code, response.text) == (200, "test_07:tench")
    assert response.headers["Content-Type"].startswith("text/plain")


def test_a_queued_request_gets_202_with_a_location_then_its_result(gunicorn_url, worker, photo):
    response = requests.post(
        f"{gunicorn_url}/v1/images?wait=0",
        data=photo.path.read_bytes(),
        headers={"Content-Type": "image/jpeg", "Idempotency-Key": "gunicorn-e2e-queued"},
        timeout=30,
    )

    assert response.status_code == 202 and response.json()["status"] == "queued"
    location = response.headers["Location"]
    assert location == f"/v1/images/{response.json()['id']}"
    deadline = time.monotonic() + 30
    while (polled := requests.get(f"{gunicorn_url}{location}", timeout=10)).status_code == 202:
        assert time.monotonic() < deadline, "no result within 30 s"
        time.sleep(0.2)
    assert polled.status_code == 200 and polled.json()["label"] == "tench"
    retried = requests.post(
        f"{gunicorn_url}/v1/images?wait=0",
        data=photo.path.read_bytes(),
        headers={"Content-Type": "image/jpeg", "Idempotency-Key": "gunicorn-e2e-queued"},
        timeout=30,
    )
    assert retried.json()["id"] == response.json()["id"]


def test_a_five_megabyte_image_goes_through(gunicorn_url, worker):
    data = noise_png(5 * 1000 * 1000)
    assert 5_000_000 <= len(data) < MAX_IMAGE_BYTES

    response = requests.post(
        f"{gunicorn_url}/v1/images?wait=60&name=noise.png",
        data=data,
        headers={"Content-Type": "image/png"},
        timeout=90,
    )

    assert response.status_code == 200, response.text
    assert response.json()["name"] == "noise.png" and response.json()["label"]


def test_a_chunked_upload_without_content_length_is_read_in_full(gunicorn_url, worker, photo):
    data = photo.path.read_bytes()

    def pieces():
        for start in range(0, len(data), 4096):
            yield data[start : start + 4096]

    response = requests.post(
        f"{gunicorn_url}/v1/images?wait=30&name=chunked.jpg",
        data=pieces(),
        headers={"Content-Type": "image/jpeg"},
        timeout=60,
    )

    assert response.request.headers.get("Transfer-Encoding") == "chunked"
    assert "Content-Length" not in response.request.headers
    assert response.status_code == 200, response.text
    assert (response.json()["name"], response.json()["label"]) == ("chunked.jpg", "tench")


@pytest.mark.parametrize("chunked", [False, True])
def test_a_body_over_the_limit_is_refused_with_a_json_413(gunicorn_url, chunked):
    data = b"\x89PNG" + b"\0" * (MAX_IMAGE_BYTES + 128 * 1024)
    body = iter([data[i : i + 65536] for i in range(0, len(data), 65536)]) if chunked else data

    response = requests.post(
        f"{gunicorn_url}/v1/images?wait=0", data=body, headers={"Content-Type": "image/png"}, timeout=30
    )

    assert response.status_code == 413
    error = response.json()["error"]
    assert error["code"] == "too_large" and str(MAX_IMAGE_BYTES) in error["message"]


@pytest.mark.parametrize(
    ("path", "kwargs", "status", "code"),
    [
        ("/v1/images", {"data": b"not an image", "headers": {"Content-Type": "image/jpeg"}}, 400, "not_an_image"),
        ("/v1/images", {"data": b"{}", "headers": {"Content-Type": "application/json"}}, 415, "unsupported_media_type"),
        ("/v1/images?wait=soon", {"data": b"x", "headers": {"Content-Type": "image/jpeg"}}, 400, "bad_wait"),
        ("/", {"files": {"myfile": ("notes.txt", b"hello")}}, 400, "not_an_image"),
        ("/", {"data": b"", "headers": {"Content-Type": "image/jpeg"}}, 400, "no_file"),
    ],
)
def test_bad_requests_get_json_errors(gunicorn_url, path, kwargs, status, code):
    response = requests.post(f"{gunicorn_url}{path}", timeout=10, **kwargs)

    assert response.status_code == status
    assert response.headers["Content-Type"] == "application/json"
    assert response.json()["error"]["code"] == code


def test_unknown_ids_are_404_and_the_last_of_repeated_query_values_wins(gunicorn_url, worker, photo):
    assert requests.get(f"{gunicorn_url}/v1/images/{'f' * 32}", timeout=10).status_code == 404
    assert requests.get(f"{gunicorn_url}/v1/images/not%20an%20id", timeout=10).json()["error"]["code"] == "not_found"

    response = requests.post(
        f"{gunicorn_url}/v1/images",
        params=[("name", "first.jpg"), ("wait", "30"), ("name", "second.jpg")],
        data=photo.path.read_bytes(),
        headers={"Content-Type": "image/jpeg"},
        timeout=60,
    )
    assert response.status_code == 200 and response.json()["name"] == "second.jpg"


def test_fifty_concurrent_requests_each_get_their_own_answer(gunicorn_url, worker, imagenet_sample, classifier):
    photos = imagenet_sample[3:500:10][:50]
    expected = [c.best.label for c in classifier.classify_bytes([p.path.read_bytes() for p in photos])]

    def send(i: int) -> requests.Response:
        if i % 2:
            with open(photos[i].path, "rb") as f:
                return requests.post(f"{gunicorn_url}/", files={"inputFile": (f"course_{i:02d}.JPEG", f)}, timeout=120)
        return requests.post(
            f"{gunicorn_url}/v1/images?wait=60&name=api_{i:02d}.jpg",
            data=photos[i].path.read_bytes(),
            headers={"Content-Type": "image/jpeg"},
            timeout=120,
        )

    with ThreadPoolExecutor(max_workers=50) as pool:
        answers = list(pool.map(send, range(50)))

    for i, response in enumerate(answers):
        assert response.status_code == 200, response.text
        if i % 2:
            assert response.text == f"course_{i:02d}:{expected[i]}"
        else:
            assert (response.json()["name"], response.json()["label"]) == (f"api_{i:02d}.jpg", expected[i])


def test_iraas_up_with_web_gunicorn_serves_through_the_adapter_and_stops_cleanly(tmp_path, photo, model_path):
    home, port = tmp_path / "home", free_port()
    env = {**os.environ, "IRAAS_HOME": str(home), "PYTHONUNBUFFERED": "1"}
    up = subprocess.Popen(
        [sys.executable, "-m", "iraas.cli", "up", "--web", "gunicorn", "--workers", "1", "--port", str(port)],
        cwd=REPO_ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
    )
    try:
        output = []
        for line in up.stdout:
            output.append(line)
            if "ready on" in line or len(output) > 200:
                break
        assert "ready on" in output[-1], "".join(output)
        with open(photo.path, "rb") as f:
            response = requests.post(f"http://127.0.0.1:{port}/", files={"myfile": ("fish.jpg", f)}, timeout=60)
        assert (response.status_code, response.text) == (200, "fish:tench")
        assert "gunicorn" in (home / "logs" / "web.log").read_text().lower()
    finally:
        up.send_signal(signal.SIGINT)
        up.wait(timeout=15)
    assert up.returncode == 0
    with pytest.raises(requests.ConnectionError):
        requests.get(f"http://127.0.0.1:{port}/v1/healthz", timeout=2)
    left = subprocess.run(["pgrep", "-f", f"gunicorn.*127.0.0.1:{port}"], capture_output=True, text=True)
    assert left.stdout == ""


def test_metrics_add_up_the_requests_of_every_gunicorn_process(gunicorn_url):
    """prometheus-client's multiprocess mode: whichever process answers the scrape counts them all."""
    from prometheus_client.parser import text_string_to_metric_families

    def healthz_answers() -> float:
        text = requests.get(f"{gunicorn_url}/metrics", timeout=10).text
        return sum(
            sample.value for family in text_string_to_metric_families(text) for sample in family.samples
            if sample.name == "iraas_http_requests_total" and sample.labels == {"route": "/v1/healthz", "code": "200"}
        )

    before = healthz_answers()
    with ThreadPoolExecutor(max_workers=8) as pool:  # side by side: both processes take some
        assert all(r.status_code == 200 for r in pool.map(
            lambda _: requests.get(f"{gunicorn_url}/v1/healthz", timeout=10), range(40)))
    assert [healthz_answers() - before for _ in range(4)] == [40] * 4
