"""Fixtures of the model's unit tests: a stand-in weights file, and a tiny synthetic ONNX classifier.

The fake network averages each input channel and maps red to class 100, green to class 200 and
blue to class 300, so the expected answer for a flat-coloured image is known.
(tests/unit/cli/classify uses the same fake model for ``iraas classify``.)"""

from __future__ import annotations

import io
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from iraas.images.model import files


@pytest.fixture
def weights(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A stand-in weights file, so cache names can be computed without the weights package."""
    path = tmp_path / "weights.pth"
    path.write_bytes(b"pretend state dict")
    monkeypatch.setattr(files, "weights_path", lambda network="lite0": path)
    return path


RED, GREEN, BLUE = 100, 200, 300


def build_fake_model(path: Path) -> Path:
    import onnx
    from onnx import TensorProto, helper, numpy_helper

    weights = np.zeros((3, 1000), dtype=np.float32)
    weights[0, RED] = weights[1, GREEN] = weights[2, BLUE] = 10.0 / 255  # a full channel: logit 10
    graph = helper.make_graph(
        [
            # The real files' input: uint8 pixels, N x H x W x RGB (iraas.images.model.network.PixelInput).
            helper.make_node("Cast", ["images"], ["floats"], to=TensorProto.FLOAT),
            helper.make_node("Transpose", ["floats"], ["planes"], perm=[0, 3, 1, 2]),
            helper.make_node("GlobalAveragePool", ["planes"], ["pooled"]),
            helper.make_node("Flatten", ["pooled"], ["flat"]),
            helper.make_node("MatMul", ["flat", "w"], ["logits"]),
        ],
        "fake_classifier",
        [helper.make_tensor_value_info("images", TensorProto.UINT8, ["N", 224, 224, 3])],
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


def png(colour: tuple[int, int, int], size: tuple[int, int] = (300, 240)) -> bytes:
    buf = io.BytesIO()
    Image.new("RGB", size, colour).save(buf, "PNG")
    return buf.getvalue()
