"""The classifier models one can choose with ``IRAAS_MODEL`` (stdlib only: the settings import it).

==============  =====================================================  =====  ================
name            what                                                   input  ImageNet sample*
==============  =====================================================  =====  ================
``lite0-int8``  EfficientNet-Lite0, int8 (static QDQ, per-channel);    224    89.0% / 96.8%
                the default: ~1.6-2x the inference images/s of float
``lite0``       EfficientNet-Lite0, float32                            224    89.2% / 97.0%
``lite2``       EfficientNet-Lite2, float32 (2.2x the FLOPs, +1.4 pts) 260    90.6% / 98.6%
==============  =====================================================  =====  ================

\\* top-1 / top-5 with OpenVINO on the 500 photos of ``../shared/data/imagenet-sample`` (the accuracy
tests in ``tests/integration/images/model``; docs/models.md has both runtimes); the int8 model is
calibrated on 100 of them (see :mod:`.quantize`). ``python -m bench.classifier`` measures the speeds.

Every model is built once from the packaged weights and cached in the model folder; see
:mod:`.export` (float) and :mod:`.quantize` (int8).

``IRAAS_MODEL`` may instead name a model of one's own: an ONNX file ``NAME.onnx`` (an absolute
path, or a file name in the model folder) beside ``NAME.labels.txt``; :mod:`.own` reads and checks it.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import PurePath

from iraas.errors import ConfigError


@dataclass(frozen=True)
class ModelSpec:
    name: str  # the IRAAS_MODEL value
    network: str  # the packaged weights and PyTorch network it is built from: "lite0" or "lite2"
    stem: str  # cache file name stem: <stem>-<weights sha8>-v<builder version>.onnx
    image_size: int  # the network's square input side
    int8: bool = False  # quantized from the float model of the same network
    description: str = ""  # one line for `iraas model list`

    @property
    def float_name(self) -> str:
        """The float model this one is built from (itself when it is float)."""
        return self.network


MODELS: dict[str, ModelSpec] = {
    spec.name: spec
    for spec in (
        ModelSpec("lite0-int8", "lite0", "efficientnet_lite0_int8", 224, int8=True,
                  description="EfficientNet-Lite0, int8: the fastest"),
        ModelSpec("lite0", "lite0", "efficientnet_lite0", 224, description="EfficientNet-Lite0, float32"),
        ModelSpec("lite2", "lite2", "efficientnet_lite2", 260,
                  description="EfficientNet-Lite2, float32, 260 px: the most accurate, 2.2x the work"),
    )
}
DEFAULT_MODEL = "lite0-int8"
OWN_SUFFIX = ".onnx"  # what an IRAAS_MODEL naming a model of one's own ends with


def is_own_model(name: str) -> bool:
    """Whether ``name`` (an ``IRAAS_MODEL`` value) names an ONNX file of one's own, not a built-in model."""
    return name.endswith(OWN_SUFFIX)


def get_model(name: str) -> ModelSpec:
    """The model called ``name``; :class:`ConfigError` listing the choices if there is none."""
    try:
        return MODELS[name]
    except KeyError:
        raise ConfigError(
            f"IRAAS_MODEL={name!r} is not a model; choose one of {', '.join(MODELS)} (default {DEFAULT_MODEL}), "
            f"or name a model of your own: /path/to/NAME{OWN_SUFFIX}, or NAME{OWN_SUFFIX} in the model folder"
        ) from None


def check_model_name(name: str) -> str:
    """``name`` if it is a built-in model or names an own ONNX file the way ``IRAAS_MODEL`` may
    (an absolute path, or a bare file name in the model folder); :class:`ConfigError` otherwise.

    Only the name is checked here (stdlib, no file is read): :mod:`.own` checks the files when the
    model is loaded.
    """
    if not is_own_model(name):
        return get_model(name).name
    path = PurePath(name)
    if not path.is_absolute() and "/" in name:
        # A relative path would mean something else in each process (a worker under systemd runs in /).
        raise ConfigError(
            f"IRAAS_MODEL={name!r}: name a model of your own by its absolute path, "
            f"or by its file name alone if it is in the model folder (IRAAS_MODEL_DIR)"
        )
    if path.name == OWN_SUFFIX:
        raise ConfigError(f"IRAAS_MODEL={name!r}: the file needs a name before {OWN_SUFFIX}")
    return name


def default_model(env: Mapping[str, str] | None = None) -> str:
    """The classifier to run: ``$IRAAS_MODEL`` (checked: a built-in name or an own ``.onnx``),
    else ``lite0-int8``."""
    env = os.environ if env is None else env
    return check_model_name(env.get("IRAAS_MODEL") or DEFAULT_MODEL)
