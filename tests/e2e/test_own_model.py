"""End to end: `iraas up` serving a model of one's own (IRAAS_MODEL=/path/to/NAME.onnx, docs/models.md),
a tiny graph made with onnx's helpers (tests/support/own_model.py): a red picture posted over HTTP
is answered with the model's own label for red, its top5 as long as its labels file, and no wnid;
a bad model stops `iraas up` in one line before it serves anything."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import requests

from harness.embedded import free_port, wait_for_line
from tests.support.own_model import COLOURS, LABELS, onnx_helpers, png, write_own_model

pytestmark = pytest.mark.slow
REPO_ROOT = Path(__file__).resolve().parents[2]


def up_env(tmp_path: Path, model: Path) -> dict[str, str]:
    """The user's environment with the model of their own, and a model folder and state of the test's own."""
    env = {k: v for k, v in os.environ.items() if k not in ("IRAAS_MODEL", "IRAAS_API_KEY")}
    (tmp_path / "models").mkdir(exist_ok=True)
    return {**env, "IRAAS_HOME": str(tmp_path / "home"), "IRAAS_MODEL_DIR": str(tmp_path / "models"),
            "IRAAS_MODEL": str(model), "PYTHONUNBUFFERED": "1"}


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, Any]]:
    onnx_helpers()
    tmp_path = tmp_path_factory.mktemp("own-model-stack")
    model = write_own_model(tmp_path / "mine")
    port = free_port()
    process = subprocess.Popen(
        [sys.executable, "-m", "iraas.cli", "up", "--port", str(port), "--workers", "1"], cwd=REPO_ROOT,
        env=up_env(tmp_path, model), stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
    )
    try:
        wait_for_line(process, "ready on", timeout_s=180)
        yield {"url": f"http://127.0.0.1:{port}", "process": process}
    finally:
        if process.poll() is None:
            process.send_signal(signal.SIGINT)
            try:
                process.wait(timeout=20)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()


def test_a_red_picture_is_answered_with_the_own_models_label_for_red(stack: dict[str, Any]) -> None:
    url = stack["url"]
    response = requests.post(f"{url}/v1/images?wait=60&name=red.png&top=10", data=png(COLOURS["poppy"]),
                             headers={"Content-Type": "image/png"}, timeout=90)
    assert response.status_code == 200, response.text
    answer = response.json()
    assert answer["label"] == "poppy"
    assert "wnid" not in answer  # left out, not null: the model's labels are plain names
    assert len(answer["top5"]) == len(LABELS) and {p["label"] for p in answer["top5"]} == set(LABELS)
    assert all(set(p) == {"label", "confidence"} for p in answer["top5"])
    assert [p["label"] for p in answer["top"]] == [p["label"] for p in answer["top5"]]  # min(10, labels)
    # The stored answer, read back by id, is the same; the course's endpoint answers the label too.
    assert requests.get(f"{url}/v1/images/{answer['id']}", timeout=10).json() == answer
    blue = requests.post(f"{url}/", files={"myfile": ("sea.png", png(COLOURS["sky"]))}, timeout=90)
    assert (blue.status_code, blue.text) == (200, "sea:sky")


def test_a_bad_model_stops_iraas_up_in_one_line(tmp_path: Path) -> None:
    onnx_helpers()
    model = write_own_model(tmp_path / "bad", labels=("just", "two"), scores=3)
    done = subprocess.run(
        [sys.executable, "-m", "iraas.cli", "up", "--port", str(free_port()), "--workers", "1"], cwd=REPO_ROOT,
        env=up_env(tmp_path, model), capture_output=True, text=True, timeout=120,
    )
    assert done.returncode == 2
    (line,) = [x for x in done.stderr.splitlines() if x.startswith("iraas up:")]
    assert line == f"iraas up: configuration error: {model}: the model gives 3 scores per image but " \
        "colours.labels.txt has 2 labels"
    assert "Traceback" not in done.stderr + done.stdout and "ready on" not in done.stdout
