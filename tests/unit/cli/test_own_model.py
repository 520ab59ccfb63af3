"""``iraas classify`` and ``iraas model`` with a model of one's own (IRAAS_MODEL=/path/to/NAME.onnx),
in-process: its own labels in the answers, no wnid, as many predictions as it has labels; a bad
model refused in one line with exit status 2; ``iraas model list`` showing what can be chosen."""

from __future__ import annotations

import csv
import io
import json
from pathlib import Path

import pytest

from iraas.cli.classify import command
from iraas.images.model import files
from tests.support.cli import run
from tests.support.own_model import COLOURS, LABELS, onnx_helpers, png, write_own_model

onnx_helpers()
pytest.importorskip("onnxruntime")


@pytest.fixture
def model_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """An empty model folder of the test's own: nothing is read from, or built into, the user's cache."""
    folder = tmp_path / "models"
    folder.mkdir()
    monkeypatch.setenv("IRAAS_MODEL_DIR", str(folder))
    monkeypatch.delenv("IRAAS_MODEL", raising=False)
    monkeypatch.setenv("IRAAS_RUNTIME", "onnxruntime")
    return folder


@pytest.fixture
def photos(tmp_path: Path) -> dict[str, str]:
    """A flat picture per label, named by its colour."""
    paths = {}
    for label in LABELS:
        path = tmp_path / f"{label}-coloured.png"
        path.write_bytes(png(COLOURS[label]))
        paths[label] = str(path)
    return paths


def test_classify_answers_the_own_models_labels(model_dir: Path, photos: dict[str, str], tmp_path: Path) -> None:
    path = write_own_model(tmp_path / "mine")
    out, err = io.StringIO(), io.StringIO()
    status = command.run([photos[label] for label in LABELS], True, model_dir, out=out, err=err, model=str(path))
    assert (status, err.getvalue()) == (0, "")
    lines = [json.loads(line) for line in out.getvalue().splitlines()]
    assert [line["label"] for line in lines] == list(LABELS)
    for line in lines:
        assert list(line) == ["path", "label", "confidence", "top5"]  # no wnid: the key is left out
        assert len(line["top5"]) == 3 and {p["label"] for p in line["top5"]} == set(LABELS)
        assert all(set(p) == {"label", "confidence"} for p in line["top5"])


def test_classify_reads_iraas_model_as_a_file_name_in_the_model_folder(
    model_dir: Path, photos: dict[str, str], tmp_path: Path, capsys, monkeypatch
) -> None:
    write_own_model(model_dir)
    monkeypatch.setenv("IRAAS_MODEL", "colours.onnx")
    results = tmp_path / "results.csv"
    code, out, err = run(capsys, "classify", photos["poppy"], photos["sky"], "--output", str(results))
    assert code == 0, err
    with open(results, newline="") as f:
        rows = list(csv.DictReader(f))
    assert [(r["label"], r["wnid"], r["error"]) for r in rows] == [("poppy", "", ""), ("sky", "", "")]


@pytest.mark.parametrize(("broken", "problem"), [
    (lambda folder: write_own_model(folder, labels=None), "no labels file colours.labels.txt beside it"),
    (lambda folder: write_own_model(folder, labels=("a", "b"), scores=3),
     "the model gives 3 scores per image but colours.labels.txt has 2 labels"),
    (lambda folder: write_own_model(folder, inputs=2), "the model has 2 inputs (pixels, bias)"),
    (lambda folder: write_own_model(folder, layout="NHWC"), "its input pixels is NHWC float32"),
    (lambda folder: write_own_model(folder, settings={"std": [0, 0, 0]}), "std is [0, 0, 0]"),
])
def test_a_bad_model_stops_classify_in_one_line_with_status_2_and_no_output_file(
    model_dir: Path, photos: dict[str, str], tmp_path: Path, capsys, monkeypatch, broken, problem: str
) -> None:
    path = broken(tmp_path / "bad")
    monkeypatch.setenv("IRAAS_MODEL", str(path))
    results = tmp_path / "results.csv"
    code, out, err = run(capsys, "classify", photos["poppy"], "--output", str(results))
    assert code == 2 and out == ""
    (line,) = err.splitlines()
    assert line.startswith("iraas classify: configuration error: ") and problem in line
    assert str(tmp_path / "bad") in line  # names the file
    assert not results.exists()  # no file of just a header


def test_a_worker_with_a_bad_model_stops_in_one_line(model_dir: Path, tmp_path: Path, capsys, monkeypatch) -> None:
    path = write_own_model(tmp_path / "bad", batch=1)
    monkeypatch.setenv("IRAAS_MODEL", str(path))
    monkeypatch.setenv("IRAAS_HOME", str(tmp_path / "home"))
    for name, value in {"IRAAS_IMAGE_INPUT_BUCKET": "in", "IRAAS_IMAGE_OUTPUT_BUCKET": "out",
                        "IRAAS_REQUEST_QUEUE_URL": "q", "IRAAS_RESPONSE_QUEUE_URL": "r"}.items():
        monkeypatch.setenv(name, value)
    code, _, err = run(capsys, "worker")  # refused while loading the model, before any AWS call
    assert code == 2
    assert err == f"iraas worker: configuration error: {path}: its input pixels has a fixed batch of 1 [1, 3, 224, 224]; " \
        "export it with a dynamic batch axis (docs/models.md)\n"


def test_model_build_checks_an_own_model_whole_and_prints_its_path(model_dir: Path, tmp_path: Path, capsys, monkeypatch) -> None:
    good = write_own_model(tmp_path / "good")
    monkeypatch.setenv("IRAAS_MODEL", str(good))
    assert run(capsys, "model", "build") == (0, f"{good}\n", "")
    bad = write_own_model(tmp_path / "bad", outputs=2)
    monkeypatch.setenv("IRAAS_MODEL", str(bad))
    code, out, err = run(capsys, "model", "build")
    assert (code, out) == (2, "")
    assert err == f"iraas model build: configuration error: {bad}: the model has 2 outputs (scores, features); " \
        "it must have one, a score per label\n"


def test_model_list_shows_the_built_in_models_and_the_own_ones_marking_the_current(
    model_dir: Path, capsys, monkeypatch
) -> None:
    weights = files.weights_path("lite0")
    built = files.model_filename(weights, "lite0") if weights else f"efficientnet_lite0-00000000-v{files.BUILDER_VERSION}.onnx"
    (model_dir / built).write_bytes(b"a built-in cache file, not an own model")
    write_own_model(model_dir, "colours")
    write_own_model(model_dir, "seven", labels=tuple(f"class {i}" for i in range(7)), settings={"input_size": 224})
    write_own_model(model_dir, "unlabelled", labels=None)
    monkeypatch.setenv("IRAAS_MODEL", "seven.onnx")

    code, out, err = run(capsys, "model", "list")

    assert (code, err) == (0, "")
    heading, *rows = out.splitlines()
    assert heading == f"models in {model_dir} (IRAAS_MODEL_DIR); * marks IRAAS_MODEL"
    table = {row[2:].split()[0]: (row[0], row[2:].split(None, 1)[1]) for row in rows}
    assert list(table) == ["lite0-int8", "lite0", "lite2", "colours.onnx", "seven.onnx", "unlabelled.onnx"]
    assert table["lite0"][1].startswith("built ") and table["lite2"][1].startswith("not built ")
    assert table["lite0-int8"][1].endswith("(the default)")
    assert table["colours.onnx"] == (" ", table["colours.onnx"][1])
    assert table["colours.onnx"][1].split()[:2] == ["3", "labels"] and "colours.labels.txt" in table["colours.onnx"][1]
    marker, text = table["seven.onnx"]
    assert marker == "*" and text.split()[:2] == ["7", "labels"] and "seven.json" in text
    assert "refused" in table["unlabelled.onnx"][1] and "no labels file unlabelled.labels.txt" in table["unlabelled.onnx"][1]


def test_model_list_names_a_current_model_outside_the_folder_and_still_lists_on_a_bad_name(
    model_dir: Path, tmp_path: Path, capsys, monkeypatch
) -> None:
    elsewhere = write_own_model(tmp_path / "elsewhere")
    monkeypatch.setenv("IRAAS_MODEL", str(elsewhere))
    code, out, _ = run(capsys, "model", "list")
    assert code == 0 and out.splitlines()[-1].startswith(f"* {elsewhere}  3 labels")

    monkeypatch.setenv("IRAAS_MODEL", "resnet18")
    code, out, err = run(capsys, "model", "list")
    assert code == 2
    assert [row.split()[0] for row in out.splitlines()[1:]] == ["lite0-int8", "lite0", "lite2"]  # none marked
    assert err.startswith("iraas model list: configuration error: IRAAS_MODEL='resnet18' is not a model; choose one of ")
