"""A model of one's own (iraas/images/model/own.py and the classifier that runs it), on a tiny graph
made with onnx's helpers (tests/support/own_model.py): it answers its own labels in its labels
file's order, with as many predictions as it has labels and no WordNet ids, its JSON changes how
its input is made, and each bad model is refused when it loads, in one line naming the file."""

from __future__ import annotations

import io
import json
from pathlib import Path

import pytest
from PIL import Image

from iraas.errors import ConfigError
from iraas.images.model.models import check_model_name, default_model
from iraas.images.model.own import IMAGENET_MEAN, IMAGENET_STD, load_own_model
from iraas.images.model.runtime import Classification, Classifier, load_classifier
from iraas.images.model.runtimes import RUNTIMES
from tests.support.own_model import COLOURS, LABELS, onnx_helpers, png, write_own_model

onnx_helpers()
pytest.importorskip("onnxruntime")


def runtime_param(name: str) -> str:
    if name == "openvino":
        pytest.importorskip("openvino")
    return name


@pytest.fixture(params=RUNTIMES)
def runtime(request: pytest.FixtureRequest) -> str:
    return runtime_param(request.param)


def classify(path: Path, runtime: str, blobs: list[bytes], top: int = 5) -> list[Classification]:
    classifier = load_classifier(path.parent, threads=1, model=str(path), runtime=runtime)
    results = classifier.classify_bytes(blobs, top=top)
    assert all(isinstance(r, Classification) for r in results), results
    return results  # type: ignore[return-value]


def encoded(picture: Image.Image) -> bytes:
    buf = io.BytesIO()
    picture.save(buf, "PNG")
    return buf.getvalue()


# --- answers ----------------------------------------------------------------------------------


@pytest.mark.parametrize("dtype", ["float32", "uint8"])
def test_an_own_model_answers_its_own_labels_in_the_order_of_its_labels_file(tmp_path: Path, runtime: str, dtype: str):
    path = write_own_model(tmp_path, dtype=dtype)
    results = classify(path, runtime, [png(COLOURS[label]) for label in LABELS])

    assert [r.best.label for r in results] == list(LABELS)
    for r in results:
        assert len(r.top5) == 3  # min(5, labels)
        assert sorted(p.label for p in r.top5) == sorted(LABELS)
        assert all(p.wnid is None for p in r.top5)
        assert sum(p.confidence for p in r.top5) == pytest.approx(1.0, abs=1e-5)  # softmax over the logits
        answer = r.to_dict(top=20)
        assert "wnid" not in answer and all("wnid" not in p for p in answer["top5"])
        assert len(answer["top"]) == 3  # min(top, labels)


def test_an_answer_has_min_5_and_the_label_count_predictions(tmp_path: Path):
    labels = tuple(f"class {i}" for i in range(7))
    path = write_own_model(tmp_path, labels=labels)
    (result,) = classify(path, "onnxruntime", [png((255, 0, 0))], top=20)
    assert len(result.ranked) == 7 and len(result.top5) == 5
    assert result.best.label == "class 6"  # red is the last label's
    (result,) = classify(path, "onnxruntime", [png((255, 0, 0))])
    assert len(result.top5) == 5 and "top" not in result.to_dict()


def test_the_json_mean_and_std_change_the_input(tmp_path: Path):
    grey = png((128, 128, 128))
    # ImageNet's mean: grey is furthest above it in blue.
    (plain,) = classify(write_own_model(tmp_path / "plain"), "onnxruntime", [grey])
    assert plain.best.label == "sky"
    # A mean far above grey in green and blue leaves red the largest channel.
    shifted = write_own_model(tmp_path / "shifted", settings={"mean": [0.0, 0.9, 0.9], "std": [0.5, 0.5, 0.5]})
    (answer,) = classify(shifted, "onnxruntime", [grey])
    assert answer.best.label == "poppy"


def test_the_json_resize_decides_what_the_centre_crop_keeps(tmp_path: Path):
    # A red picture with a blue square in the middle, a quarter of its area.
    picture = Image.new("RGB", (128, 128), (255, 0, 0))
    picture.paste((0, 0, 255), (32, 32, 96, 96))
    blob = encoded(picture)
    whole = write_own_model(tmp_path / "whole", side=64, settings={"input_size": 64, "resize": 64})
    centre = write_own_model(tmp_path / "centre", side=64, settings={"input_size": 64, "resize": 128})
    assert classify(whole, "onnxruntime", [blob])[0].best.label == "poppy"  # the whole picture: mostly red
    assert classify(centre, "onnxruntime", [blob])[0].best.label == "sky"  # only the blue middle


def test_the_defaults_are_imagenets_and_resize_follows_the_input_size(tmp_path: Path):
    model = load_own_model(write_own_model(tmp_path))
    assert (model.labels, model.input_size, model.resize, model.mean, model.std) == (
        LABELS, 224, 256, IMAGENET_MEAN, IMAGENET_STD)
    bigger = load_own_model(write_own_model(tmp_path / "299", side=299, settings={"input_size": 299}))
    assert (bigger.input_size, bigger.resize) == (299, 342)  # torchvision's Inception v3 recipe
    # A dynamic side takes the configured one.
    dynamic = write_own_model(tmp_path / "dynamic", side=None, settings={"input_size": 96})
    assert classify(dynamic, "onnxruntime", [png((0, 255, 0))])[0].best.label == "fern"


# --- IRAAS_MODEL ------------------------------------------------------------------------------


def test_iraas_model_takes_an_absolute_path_or_a_file_name_in_the_model_folder(tmp_path: Path):
    path = write_own_model(tmp_path)
    assert default_model({"IRAAS_MODEL": str(path)}) == str(path)
    assert default_model({"IRAAS_MODEL": "colours.onnx"}) == "colours.onnx"
    classifier = load_classifier(tmp_path, threads=1, model="colours.onnx", runtime="onnxruntime")
    assert classifier.model_path == path
    for name in ("models/colours.onnx", "./colours.onnx", ".onnx"):
        with pytest.raises(ConfigError, match="IRAAS_MODEL="):
            check_model_name(name)
    with pytest.raises(ConfigError, match=r"IRAAS_MODEL='resnet18' is not a model; choose one of lite0-int8, lite0, lite2"):
        check_model_name("resnet18")


# --- refusals: each one line, naming the file and what is wrong ---------------------------------


def refusal(path: Path, runtime: str = "onnxruntime") -> str:
    with pytest.raises(ConfigError) as caught:
        load_classifier(path.parent, threads=1, model=str(path), runtime=runtime)
    message = str(caught.value)
    assert "\n" not in message
    return message


def test_a_missing_file_is_refused(tmp_path: Path):
    assert refusal(tmp_path / "nothing.onnx") == f"IRAAS_MODEL={tmp_path / 'nothing.onnx'}: no such file"


def test_a_model_without_its_labels_file_is_refused(tmp_path: Path):
    path = write_own_model(tmp_path, labels=None)
    assert refusal(path).startswith(f"{path}: no labels file colours.labels.txt beside it")


@pytest.mark.parametrize(("text", "problem"), [
    ("", "no labels"),
    ("\n\n", "no labels"),
    ("sky\n\npoppy\n", "line 2 is blank"),
])
def test_a_labels_file_without_labels_or_with_a_blank_line_is_refused(tmp_path: Path, text: str, problem: str):
    path = write_own_model(tmp_path)
    (tmp_path / "colours.labels.txt").write_text(text)
    assert refusal(path).startswith(f"{tmp_path / 'colours.labels.txt'}: {problem}")


def test_a_label_count_that_is_not_the_models_is_refused(tmp_path: Path, runtime: str):
    path = write_own_model(tmp_path, scores=4)  # 4 scores, 3 labels
    assert refusal(path, runtime) == f"{path}: the model gives 4 scores per image but colours.labels.txt has 3 labels"
    # Where the graph does not say its output's size, the first run does.
    dynamic = write_own_model(tmp_path / "dynamic", scores=4, dynamic_scores=True)
    assert refusal(dynamic, runtime).endswith("the model gives 4 scores per image but colours.labels.txt has 3 labels")


@pytest.mark.parametrize(("settings", "problem"), [
    ("{", "not JSON"),
    ("[224]", "not a JSON object"),
    ('{"inputsize": 224}', "unknown key 'inputsize'"),
    ('{"input_size": 224.0}', "input_size is 224.0; it must be a whole number from 8 to 4096"),
    ('{"input_size": true}', "input_size is true"),
    ('{"input_size": 100000}', "input_size is 100000"),
    ('{"resize": 200}', "resize is 200; it must be a whole number from 224"),
    ('{"mean": [123.7, 116.3, 103.5]}', "mean is [123.7, 116.3, 103.5]; it must be 3 numbers (R, G, B), each from 0 to 1"),
    ('{"mean": [0.5, 0.5]}', "mean is [0.5, 0.5]"),
    ('{"std": [0.2, 0, 0.2]}', "std is [0.2, 0, 0.2]; it must be 3 numbers (R, G, B), each above 0"),
    ('{"std": "0.5"}', 'std is "0.5"'),
])
def test_bad_json_values_are_refused(tmp_path: Path, settings: str, problem: str):
    path = write_own_model(tmp_path)
    (tmp_path / "colours.json").write_text(settings)
    assert refusal(path).startswith(f"{tmp_path / 'colours.json'}: {problem}")


@pytest.mark.parametrize(("graph", "problem"), [
    ({"inputs": 2}, "the model has 2 inputs (pixels, bias); it must take one, a batch of images"),
    ({"layout": "NHWC"}, "its input pixels is NHWC float32 [?, 224, 224, 3]; a model of your own takes N x 3 x side x side"),
    ({"layout": "NHWC", "dtype": "uint8"}, "its input pixels is NHWC uint8 [?, 224, 224, 3]"),
    ({"batch": 1}, "its input pixels has a fixed batch of 1 [1, 3, 224, 224]; export it with a dynamic batch axis"),
    ({"side": 299}, "its input pixels is [?, 3, 299, 299] but input_size is 224 (the default); set \"input_size\" in colours.json"),
    ({"outputs": 2}, "the model has 2 outputs (scores, features); it must have one, a score per label"),
])
def test_a_graph_that_takes_or_gives_something_else_is_refused(tmp_path: Path, runtime: str, graph: dict, problem: str):
    path = write_own_model(tmp_path, **graph)
    assert refusal(path, runtime).startswith(f"{path}: {problem}")


def test_an_input_of_another_type_is_refused(tmp_path: Path):
    onnx = onnx_helpers()
    path = write_own_model(tmp_path)
    model = onnx.load(path)
    model.graph.input[0].type.tensor_type.elem_type = onnx.TensorProto.DOUBLE
    model.graph.node.insert(0, onnx.helper.make_node("Cast", ["pixels"], ["as_float"], to=onnx.TensorProto.FLOAT))
    model.graph.node[1].input[0] = "as_float"
    onnx.save(model, path)
    assert refusal(path) == f"{path}: its input pixels is float64; it must be float32 or uint8"


def test_the_builtin_classifier_keeps_its_ways(tmp_path: Path):
    """Classifier without ``own`` reads NHWC uint8 files as before: a JSON beside a built-in file is ignored."""
    from tests.unit.images.model.conftest import RED, build_fake_model

    path = build_fake_model(tmp_path / "builtin.onnx")
    (tmp_path / "builtin.json").write_text(json.dumps({"input_size": 64}))
    classifier = Classifier(path, threads=1, runtime="onnxruntime")
    assert (classifier.image_size, classifier.resize) == (224, 256)
    (result,) = classifier.classify_bytes([png((255, 0, 0))])
    assert result.best.index == RED and result.best.wnid is not None and len(result.top5) == 5  # type: ignore[union-attr]


def test_an_nhwc_input_with_a_dynamic_side_is_refused_as_nhwc(tmp_path: Path, runtime: str):
    path = write_own_model(tmp_path, layout="NHWC", side=None)
    assert refusal(path, runtime) == (f"{path}: its input pixels is NHWC float32 [?, ?, ?, 3]; a model of your own "
                                      "takes N x 3 x side x side (NCHW), as PyTorch exports it")


def test_a_graph_that_fails_its_first_run_is_refused_in_one_line(tmp_path: Path):
    # onnxruntime checks the shapes inside the graph as it runs; OpenVINO ran this one without a word.
    onnx = onnx_helpers()
    path = write_own_model(tmp_path, layout="NHWC")
    model = onnx.load(path)
    for dim in model.graph.input[0].type.tensor_type.shape.dim:  # nothing fixed: only a run can tell
        dim.Clear()
    onnx.save(model, path)
    assert refusal(path, "onnxruntime").startswith(f"{path}: its first run, on 1 x 3 x 224 x 224 pixels, failed: ")


def test_a_file_that_is_no_onnx_model_is_refused_in_one_line(tmp_path: Path, runtime: str):
    path = write_own_model(tmp_path)
    path.write_bytes(b"a PyTorch checkpoint, say")
    assert refusal(path, runtime).startswith(f"{path}: {runtime} cannot load it: ")
