"""End to end: `iraas classify --remote` and `iraas status` against `iraas up`, as a user runs
them: real photos over real HTTP, many at a time, then the stack's own report."""

from __future__ import annotations

import csv
import json
import subprocess
import sys
from pathlib import Path

import pytest

from harness.embedded import RunningStack, running_stack
from iraas.config import REPO_ROOT

pytestmark = pytest.mark.slow
PHOTOS = 24


@pytest.fixture(scope="module")
def service(tmp_path_factory, model_path) -> RunningStack:
    with running_stack(tmp_path_factory.mktemp("iraas-home"), workers=2) as running:
        yield running


@pytest.fixture(scope="module")
def folder(imagenet_sample, tmp_path_factory) -> Path:
    """Shared photos (linked, not copied), one in a subfolder, and a .jpg that is not an image."""
    root = tmp_path_factory.mktemp("photos")
    (root / "sub").mkdir()
    for n, photo in enumerate(imagenet_sample[:PHOTOS]):
        (root / ("sub" if n == 0 else ".") / photo.path.name).symlink_to(photo.path)
    (root / "broken.jpg").write_bytes(b"this is not a JPEG")
    return root


def iraas(service: RunningStack, *args: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "iraas.cli", *args], env=service.env, cwd=REPO_ROOT, capture_output=True, text=True,
        timeout=300,
    )


def test_a_folder_sent_to_the_service_gets_every_label_the_model_gives_in_input_order(
    service: RunningStack, folder: Path, classifier, tmp_path: Path
) -> None:
    results = tmp_path / "results.csv"
    done = iraas(service, "classify", "--remote", service.url, "--concurrency", "8", str(folder), "-o", str(results))
    assert done.returncode == 1, done.stderr  # broken.jpg
    with open(results, newline="") as f:
        rows = list(csv.DictReader(f))
    paths = [r["path"] for r in rows]
    assert paths == sorted(paths, key=lambda p: Path(p).parts) and len(paths) == PHOTOS + 1
    broken = next(r for r in rows if r["path"].endswith("broken.jpg"))
    assert broken["label"] == "" and broken["error"].startswith("not an image")
    photos = [r for r in rows if r is not broken]
    answers = classifier.classify_bytes([Path(r["path"]).read_bytes() for r in photos])
    assert [r["label"] for r in photos] == [a.best.label for a in answers]
    assert [r["wnid"] for r in photos] == [a.best.wnid for a in answers]

    lines = done.stderr.splitlines()
    assert f"{folder / 'broken.jpg'}: not an image, or an image format we cannot read" in lines
    assert any(line.startswith(f"classified {PHOTOS} of {PHOTOS + 1} images in ") and line.endswith("; 1 failed")
               for line in lines)
    latency = next(line for line in lines if line.startswith("latency "))
    assert "p50" in latency and "p90" in latency and "p99" in latency and latency.endswith("(8 requests at a time)")
    assert "\r" not in done.stderr  # piped: no progress bar


def test_remote_results_print_as_json_lines_like_local_ones(service: RunningStack, folder: Path) -> None:
    done = iraas(service, "classify", "--remote", service.url, "--json", str(folder / "sub"))
    assert done.returncode == 0, done.stderr
    (line,) = done.stdout.splitlines()
    result = json.loads(line)
    assert list(result) == ["path", "label", "confidence", "wnid", "top5"]
    assert len(result["top5"]) == 5 and result["top5"][0]["label"] == result["label"]


def test_status_shows_the_stack_its_queues_workers_and_what_it_answered(service: RunningStack) -> None:
    done = iraas(service, "status")
    assert done.returncode == 0, done.stderr
    rows = {line[:13].strip(): line[13:] for line in done.stdout.splitlines() if line[:13].strip()}
    assert rows["stack"] == f"embedded stack (iraas up), web tier {service.url}"
    assert rows["AWS"].startswith(f"endpoint {service.stack['endpoint_url']}, region ")
    assert rows["resources"].split() == ["ImageInputBucket", service.resources["ImageInputBucket"]]
    assert rows["requests"] == "0 waiting, 0 in flight"
    assert rows["dead letters"] == "0"
    assert rows["workers"].startswith("2 running, 2 desired, at most 2 (iraas up --workers)")
    assert "answered in the last minute" in rows["throughput"]


def test_status_url_asks_the_running_web_tier(service: RunningStack) -> None:
    done = iraas(service, "status", "--url", service.url)
    assert done.returncode == 0, done.stderr
    lines = done.stdout.splitlines()
    assert lines[0] == f"stack        {service.url}"
    assert "requests     0 waiting, 0 in flight" in lines
    assert any(line.startswith("workers      2 running, 2 desired") for line in lines)
