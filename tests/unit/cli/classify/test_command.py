"""iraas/cli/classify/command.py: what ``iraas classify`` prints for each file, in order, in batches,
with progress on a terminal only, on the model's tiny synthetic classifier (conftest.py)."""

from __future__ import annotations

import io
import json
import time
from pathlib import Path

import pytest

pytest.importorskip("onnxruntime")
pytest.importorskip("onnx")

from iraas.cli.classify import command  # noqa: E402
from iraas.images.model import runtime  # noqa: E402
from iraas.images.model.files import ModelUnavailableError  # noqa: E402
from iraas.images.model.labels import imagenet_labels  # noqa: E402
from tests.unit.images.model.conftest import BLUE, GREEN, RED, png  # noqa: E402


@pytest.fixture
def files(tmp_path: Path) -> dict[str, str]:
    paths = {}
    for name, data in {
        "red.png": png((255, 0, 0)),
        "green.png": png((0, 255, 0)),
        "blue.png": png((0, 0, 255)),
        "notes.txt": b"hello",
    }.items():
        (tmp_path / name).write_bytes(data)
        paths[name] = str(tmp_path / name)
    paths["missing.jpg"] = str(tmp_path / "missing.jpg")
    return paths


def run(paths: list[str], as_json: bool = False, err: io.StringIO | None = None):
    out, err = io.StringIO(), err or io.StringIO()
    status = command.run(paths, as_json, Path("unused"), out=out, err=err)
    return status, out.getvalue().splitlines(), err.getvalue()


def test_run_prints_one_tab_separated_line_per_file_in_order(use_fake_model, files) -> None:
    status, lines, err = run([files["blue.png"], files["red.png"], files["green.png"]])
    assert status == 0
    assert err == ""
    rows = [line.split("\t") for line in lines]
    assert [r[0] for r in rows] == [files["blue.png"], files["red.png"], files["green.png"]]
    labels = imagenet_labels()
    assert [r[1] for r in rows] == [labels[BLUE].name, labels[RED].name, labels[GREEN].name]
    assert all(len(r[2].split(".")[1]) == 4 and 0 < float(r[2]) <= 1 for r in rows)


def test_run_json_lines(use_fake_model, files) -> None:
    status, lines, _ = run([files["red.png"]], as_json=True)
    assert status == 0
    (obj,) = [json.loads(line) for line in lines]
    assert list(obj) == ["path", "label", "confidence", "wnid", "top5"]
    assert obj["path"] == files["red.png"]
    assert obj["wnid"] == imagenet_labels()[RED].wnid
    assert len(obj["top5"]) == 5 and obj["top5"][0]["label"] == obj["label"]
    assert set(obj["top5"][0]) == {"label", "wnid", "confidence"}


def test_run_reports_bad_files_and_carries_on(use_fake_model, files) -> None:
    paths = [files["missing.jpg"], files["red.png"], files["notes.txt"], files["blue.png"]]
    status, lines, err = run(paths)
    assert status == 1
    assert [line.split("\t")[0] for line in lines] == [files["red.png"], files["blue.png"]]
    err_lines = err.splitlines()
    assert len(err_lines) == 2
    assert err_lines[0].startswith(f"{files['missing.jpg']}: ")
    assert "No such file" in err_lines[0]
    assert err_lines[1].startswith(f"{files['notes.txt']}: not an image")


def test_run_many_files_in_batches_with_progress_on_a_tty(use_fake_model, files) -> None:
    class Tty(io.StringIO):
        def isatty(self) -> bool:
            return True

    paths = [files["red.png"], files["green.png"]] * 20  # 40 files: three batches of <= 16
    err = Tty()
    status, lines, err_text = run(paths, err=err)
    assert status == 0
    assert len(lines) == 40
    assert "classified 16/40" in err_text and "classified 40/40" in err_text
    assert err_text.endswith("\n")


def test_no_progress_when_stderr_is_not_a_tty(use_fake_model, files) -> None:
    _, lines, err = run([files["red.png"]] * 40)
    assert len(lines) == 40
    assert err == ""


def test_run_without_a_model_explains_how_to_build_it(monkeypatch: pytest.MonkeyPatch, files) -> None:
    def unavailable(model_dir, progress=print, model=None):
        raise ModelUnavailableError("no ONNX model in /x: run `make install`")

    monkeypatch.setattr(runtime, "ensure_model", unavailable)
    status, lines, err = run([files["red.png"]])
    assert status == 2
    assert lines == []
    assert "make install" in err


def test_iraas_classify_starts_only_a_few_batches_ahead_of_its_reader(tmp_path: Path) -> None:
    import threading

    from iraas.cli.classify.command import BATCH_SIZE, classify_files

    class CountingClassifier:
        def __init__(self) -> None:
            self.batches = 0
            self.lock = threading.Lock()

        def classify_bytes(self, blobs: list[bytes]) -> list[str]:
            with self.lock:
                self.batches += 1
            return [blob.decode() for blob in blobs]

    files = []
    for n in range(20 * BATCH_SIZE):
        files.append(tmp_path / f"{n}.jpg")
        files[-1].write_bytes(str(n).encode())
    counting = CountingClassifier()
    batches = classify_files(counting, [str(f) for f in files], lanes=2)
    first = next(batches)
    time.sleep(0.2)  # a reader that stops: the lanes must not run through the other 19 batches
    assert counting.batches <= 1 + 2 * 2
    rest = [pair for batch in batches for pair in batch]
    assert [result for _, result in first + rest] == [str(n) for n in range(20 * BATCH_SIZE)]
    assert counting.batches == 20
