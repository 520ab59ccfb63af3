"""iraas/images/model/runtime.py on a tiny synthetic ONNX model (no real weights needed; the fake
model's answers are in conftest.py): top 5, bad images isolated, one run per batch, parallel decoding,
on both runtimes (OpenVINO and onnxruntime) where the test is about the classifier's answers."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import pytest
from PIL import Image

pytest.importorskip("onnxruntime")
pytest.importorskip("onnx")

from iraas.errors import ConfigError  # noqa: E402
from iraas.images.model.files import ModelUnavailableError  # noqa: E402
from iraas.images.model.labels import imagenet_labels  # noqa: E402
from iraas.images.model.runtime import (  # noqa: E402
    Classification,
    Classifier,
    OnnxRuntimeEngine,
    Prediction,
)
from iraas.images.model.runtimes import RUNTIMES  # noqa: E402
from iraas.media.validation import ImageError  # noqa: E402
from tests.unit.images.model.conftest import BLUE, GREEN, RED, png  # noqa: E402


@pytest.fixture(scope="module", params=RUNTIMES)
def classifier(request: pytest.FixtureRequest, fake_model: Path) -> Classifier:
    if request.param == "openvino":
        pytest.importorskip("openvino")
    return Classifier(fake_model, threads=1, runtime=request.param)


class CountingEngine:
    """Wraps a runtime's engine to count its runs and their batch sizes."""

    def __init__(self, engine) -> None:
        self.engine = engine
        self.image_size = engine.image_size
        self.calls: list[int] = []

    def run(self, x):
        self.calls.append(len(x))
        return self.engine.run(x)


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
    counting = CountingEngine(classifier._engine)
    classifier._engine = counting
    try:
        blobs = [png((255, 0, 0)), b"not an image", png((0, 0, 255)), png((0, 255, 0))[:100]]
        results = classifier.classify_bytes(blobs)
    finally:
        classifier._engine = counting.engine
    assert counting.calls == [2]  # one inference for the two good images
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
    c = Classification(ranked=preds)
    assert c.best is preds[0]
    assert preds[0].to_dict() == {"label": "label 0", "wnid": "n00000000", "confidence": 0.1235}
    d = c.to_dict()
    assert (d["label"], d["wnid"], d["confidence"]) == ("label 0", "n00000000", 0.1235)
    assert d["top5"] == [p.to_dict() for p in preds]
    assert "top" not in d
    json.dumps(d)  # plain JSON types only


def test_to_dict_with_top_adds_that_many_and_keeps_top5() -> None:
    preds = tuple(Prediction(f"label {i}", f"n{i:08d}", 0.5 / (i + 1), i) for i in range(12))
    d = Classification(ranked=preds).to_dict(top=12)
    assert [p["label"] for p in d["top"]] == [f"label {i}" for i in range(12)]
    assert d["top5"] == [p.to_dict() for p in preds[:5]]
    assert Classification(ranked=preds).to_dict(top=1)["top"] == [preds[0].to_dict()]


def test_classify_bytes_ranks_as_many_as_asked_within_the_bounds(fake_model: Path) -> None:
    c = Classifier(fake_model, threads=1)
    blob = png((255, 0, 0))
    assert [len(r.ranked) for r in c.classify_bytes([blob], top=12)] == [12]  # type: ignore[union-attr]
    assert [len(r.ranked) for r in c.classify_bytes([blob])] == [5]  # type: ignore[union-attr]
    assert [len(r.ranked) for r in c.classify_bytes([blob], top=1)] == [5]  # type: ignore[union-attr]
    assert [len(r.ranked) for r in c.classify_bytes([blob], top=99)] == [20]  # type: ignore[union-attr]
    ranked = c.classify_bytes([blob], top=20)[0].ranked  # type: ignore[union-attr]
    assert [p.confidence for p in ranked] == sorted((p.confidence for p in ranked), reverse=True)


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
    engine = Classifier(fake_model, threads=2, runtime="onnxruntime")._engine
    assert isinstance(engine, OnnxRuntimeEngine)
    options = engine.session.get_session_options()
    assert options.get_session_config_entry("session.intra_op.allow_spinning") == "0"


def test_an_unknown_runtime_is_refused_with_the_choices(fake_model: Path) -> None:
    with pytest.raises(ConfigError, match="IRAAS_RUNTIME='tensorflow' is not a runtime; choose one of openvino, onnxruntime"):
        Classifier(fake_model, runtime="tensorflow")


def test_the_runtime_comes_from_the_environment(fake_model: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("IRAAS_RUNTIME", "onnxruntime")
    assert Classifier(fake_model, threads=1).runtime == "onnxruntime"
    monkeypatch.delenv("IRAAS_RUNTIME")
    assert Classifier(fake_model, threads=1).runtime == "openvino"  # the default


def test_a_runtime_that_is_not_installed_says_how_to_get_it(fake_model: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "openvino", None)  # import openvino raises ImportError
    with pytest.raises(ModelUnavailableError, match=r"openvino is not installed: .*IRAAS_RUNTIME=onnxruntime"):
        Classifier(fake_model, runtime="openvino")


def test_concurrent_batches_on_several_streams_keep_their_answers(fake_model: Path) -> None:
    """iraas classify's lanes: batches inferred at once from different threads, each its own answers."""
    pytest.importorskip("openvino")
    from concurrent.futures import ThreadPoolExecutor

    lanes = Classifier(fake_model, threads=1, runtime="openvino", streams=2)
    colours = [(255, 0, 0), (0, 255, 0), (0, 0, 255)]
    expected = [RED, GREEN, BLUE]
    batches = [[png(colours[(i + j) % 3]) for j in range(4)] for i in range(12)]
    with ThreadPoolExecutor(2) as pool:
        answers = list(pool.map(lanes.classify_bytes, batches))
    for i, answer in enumerate(answers):
        assert [r.best.index for r in answer] == [expected[(i + j) % 3] for j in range(4)]
