"""A model of one's own, as a user would bring it: a tiny ONNX graph made with onnx's helpers, its
labels file and (optionally) its JSON, written into a folder (docs/models.md).

The graph averages each colour channel of its NCHW input (GlobalAveragePool) and maps the three
averages to its scores with a constant matrix: red to the last label, green to the middle one,
blue to the first (``COLOURS``), so that the labels file's order is what decides the answer. The
``**bad`` arguments make the graphs that IRaaS must refuse: two inputs, NHWC, a fixed batch, ...
"""

from __future__ import annotations

import io
import json
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from PIL import Image

LABELS = ("sky", "fern", "poppy")  # the labels file, in the order of the outputs
COLOURS = {"poppy": (255, 0, 0), "fern": (0, 255, 0), "sky": (0, 0, 255)}  # what each label's image is


def onnx_helpers() -> Any:
    """The onnx package, or a skip saying why (it comes with ``iraas[build]``: ``make install``)."""
    return pytest.importorskip("onnx", reason="the onnx package builds the test's own model; pip install 'iraas[build]'")


def write_own_model(
    folder: Path,
    name: str = "colours",
    *,
    labels: tuple[str, ...] | None = LABELS,
    settings: dict[str, Any] | None = None,
    dtype: str = "float32",
    side: int | None = 224,
    scores: int | None = None,
    layout: str = "NCHW",
    batch: int | None = None,
    inputs: int = 1,
    outputs: int = 1,
    dynamic_scores: bool = False,
) -> Path:
    """Write ``folder/NAME.onnx``, ``NAME.labels.txt`` (unless ``labels`` is None) and ``NAME.json``
    (if ``settings``); returns the .onnx's path. ``scores``: outputs per image (default: one per
    label); ``side``: the input's fixed height and width (None: dynamic)."""
    onnx = onnx_helpers()
    from onnx import TensorProto, helper, numpy_helper

    count = scores if scores is not None else len(labels or LABELS)
    weights = np.zeros((3, count), dtype=np.float32)
    for channel, column in enumerate((count - 1, count // 2, 0)):  # red, green, blue -> last, middle, first
        weights[channel, column] = 10.0 if dtype == "float32" else 10.0 / 255
    elem = TensorProto.FLOAT if dtype == "float32" else TensorProto.UINT8
    dims: list[Any] = [batch if batch is not None else "N", 3, side or "H", side or "W"]
    nodes = []
    first = "pixels"
    if layout == "NHWC":
        dims = [dims[0], dims[2], dims[3], 3]
        nodes.append(helper.make_node("Transpose", [first], ["planes"], perm=[0, 3, 1, 2]))
        first = "planes"
    if dtype != "float32":
        nodes.append(helper.make_node("Cast", [first], ["floats"], to=TensorProto.FLOAT))
        first = "floats"
    nodes += [
        helper.make_node("GlobalAveragePool", [first], ["pooled"]),
        helper.make_node("Flatten", ["pooled"], ["flat"]),
        helper.make_node("MatMul", ["flat", "weights"], ["scores"]),
    ]
    graph_inputs = [helper.make_tensor_value_info("pixels", elem, dims)]
    if inputs == 2:  # a second input the graph adds to its scores
        graph_inputs.append(helper.make_tensor_value_info("bias", TensorProto.FLOAT, [1, count]))
        nodes[-1] = helper.make_node("MatMul", ["flat", "weights"], ["unbiased"])
        nodes.append(helper.make_node("Add", ["unbiased", "bias"], ["scores"]))
    graph_outputs = [helper.make_tensor_value_info("scores", TensorProto.FLOAT, ["N", None if dynamic_scores else count])]
    if outputs == 2:
        nodes.append(helper.make_node("Identity", ["pooled"], ["features"]))
        graph_outputs.append(helper.make_tensor_value_info("features", TensorProto.FLOAT, ["N", 3, 1, 1]))
    graph = helper.make_graph(nodes, "own_model", graph_inputs, graph_outputs,
                              initializer=[numpy_helper.from_array(weights, "weights")])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 8  # old enough for any onnxruntime and OpenVINO the project supports
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / f"{name}.onnx"
    onnx.save(model, path)
    if labels is not None:
        (folder / f"{name}.labels.txt").write_text("".join(f"{label}\n" for label in labels))
    if settings is not None:
        (folder / f"{name}.json").write_text(json.dumps(settings))
    return path


def png(colour: tuple[int, int, int], size: tuple[int, int] = (300, 240)) -> bytes:
    """A flat-coloured PNG."""
    buf = io.BytesIO()
    Image.new("RGB", size, colour).save(buf, "PNG")
    return buf.getvalue()
