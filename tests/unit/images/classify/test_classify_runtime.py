"""iraas.images.model.runtime and .command on a tiny synthetic ONNX model (no real weights needed).

The fake network averages each input channel and maps red to class 100, green to class 200 and
blue to class 300, so the expected answer for a flat-coloured image is known.
"""

from __future__ import annotations

import io
import json
import time
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

pytest.importorskip("onnxruntime")
onnx = pytest.importorskip("onnx")

from iraas.cli.classify import command  # noqa: E402
from iraas.images.model import runtime  # noqa: E402
from iraas.images.model.files import ModelUnavailableError  # noqa: E402
from iraas.images.model.labels import imagenet_labels  # noqa: E402
from iraas.images.model.runtime import Classification, Classifier, Prediction  # noqa: E402
from iraas.media.validation import ImageError  # noqa: E402

RED, GREEN, BLUE = 100, 200, 300


def build_fake_model(path: Path) -> Path:
    from onnx import TensorProto, helper, numpy_helper

    weights = np.zeros((3, 1000), dtype=np.float32)
    weights[0, RED] = weights[1, GREEN] = weights[2, BLUE] = 10.0
    graph = helper.make_graph(
        [
            helper.make_node("GlobalAveragePool", ["images"], ["pooled"]),
            helper.make_node("Flatten", ["pooled"], ["flat"]),
            helper.make_node("MatMul", ["flat", "w"], ["logits"]),
        ],
        "fake_classifier",
        [helper.make_tensor_value_info("images", TensorProto.FLOAT, ["N", 3, 224, 224])],
        [helper.make_tensor_value_info("logits", TensorProto.FLOAT, ["N", 1000])],
        initializer=[numpy_helper.from_array(weights, "w")],
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 8  # old enough for any onnxruntime the project supports
    onnx.save(model, path)
    return path


@pytest.fixture(scope="module")
def fake_model(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return build_fake_model(tmp_path_factory.mktemp("model") / "fake.onnx")


@pytest.fixture(scope="module")
def classifier(fake_model: Path) -> Classifier:
    return Classifier(fake_model, threads=1)


def png(colour: tuple[int, int, int], size: tuple[int, int] = (300, 240)) -> bytes:
    buf = io.BytesIO()
    Image.new("RGB", size, colour).save(buf, "PNG")
    return buf.getvalue()


class CountingSession:
    """Wraps an InferenceSession to count run() calls."""

    def __init__(self, session) -> None:
        self.session = session
        self.calls: list[int] = []

    def run(self, outputs, feeds):
        self.calls.append(len(next(iter(feeds.values()))))
        return self.session.run(outputs, feeds)


def test_classify_images_returns_sorted_top5(classifier: Classifier) -> None:
    images = [Image.new("RGB", (256, 256), c) for c in ((255, 0, 0), (0, 255, 0), (0, 0, 255))]
    results = classifier.classify_images(images)
    assert [r.best.index for r in results] == [RED, GREEN, BLUE]
    labels = imagenet_labels()
    for r in results:
        assert len(r.top5) == 5
        confidences = [p.confidence for p in r.top5]
        assert confidences == sorted(confidences, reverse=True)
        assert 0.9 < r.best.confidence <= 1.0
        assert sum(confidences) <= 1.0 + 1e-6
        assert all(p.label == labels[p.index].name and p.wnid == labels[p.index].wnid for p in r.top5)


def test_classify_images_empty(classifier: Classifier) -> None:
    assert classifier.classify_images([]) == []
    assert classifier.classify_bytes([]) == []


def test_classify_bytes_isolates_bad_images_and_runs_one_batch(classifier: Classifier) -> None:
    counting = CountingSession(classifier._session)
    classifier._session = counting  # type: ignore[assignment]
    try:
        blobs = [png((255, 0, 0)), b"not an image", png((0, 0, 255)), png((0, 255, 0))[:100]]
        results = classifier.classify_bytes(blobs)
    finally:
        classifier._session = counting.session
    assert counting.calls == [2]  # one session.run for the two good images
    assert isinstance(results[0], Classification) and results[0].best.index == RED
    assert isinstance(results[1], ImageError) and results[1].code == "not_an_image"
    assert isinstance(results[2], Classification) and results[2].best.index == BLUE
    assert isinstance(results[3], ImageError) and results[3].code == "undecodable"


def test_classify_bytes_enforces_max_pixels(fake_model: Path) -> None:
    small = Classifier(fake_model, threads=1, max_pixels=1000)
    (result,) = small.classify_bytes([png((255, 0, 0))])
    assert isinstance(result, ImageError) and result.code == "too_many_pixels"


def test_to_dict_shapes() -> None:
    preds = tuple(Prediction(f"label {i}", f"n{i:08d}", 0.123456 / (i + 1), i) for i in range(5))
    c = Classification(top5=preds)
    assert c.best is preds[0]
    assert preds[0].to_dict() == {"label": "label 0", "wnid": "n00000000", "confidence": 0.1235}
    d = c.to_dict()
    assert (d["label"], d["wnid"], d["confidence"]) == ("label 0", "n00000000", 0.1235)
    assert d["top5"] == [p.to_dict() for p in preds]
    json.dumps(d)  # plain JSON types only


# --- command.run -------------------------------------------------------------------------


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


@pytest.fixture
def use_fake_model(monkeypatch: pytest.MonkeyPatch, fake_model: Path) -> None:
    monkeypatch.setattr(runtime, "ensure_model", lambda model_dir, progress=print, model=None: fake_model)


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


def test_parallel_decoding_keeps_order_and_isolates_bad_images(fake_model: Path) -> None:
    two_threads = Classifier(fake_model, threads=2)
    assert two_threads.decode_threads == 2
    blobs = [png((255, 0, 0)), b"not an image", png((0, 0, 255)), png((0, 255, 0))] * 3
    results = two_threads.classify_bytes(blobs)
    assert [r.best.index if isinstance(r, Classification) else r.code for r in results] == [
        RED, "not_an_image", BLUE, GREEN
    ] * 3


def test_inference_threads_sleep_between_runs(fake_model: Path) -> None:
    # Spinning threads would take the cores that decoding the next batch (and, in a worker, the
    # other processes) need; bench.classifier measures the difference.
    options = Classifier(fake_model, threads=2)._session.get_session_options()
    assert options.get_session_config_entry("session.intra_op.allow_spinning") == "0"


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
