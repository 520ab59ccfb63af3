"""iraas/images/model/models.py: the model registry and ``IRAAS_MODEL``."""

from __future__ import annotations

import pytest

from iraas.errors import ConfigError
from iraas.images.model.models import DEFAULT_MODEL, MODELS, default_model, get_model


def test_registry_names_sizes_and_default() -> None:
    assert set(MODELS) == {"lite0-int8", "lite0", "lite2"}
    assert DEFAULT_MODEL == "lite0-int8" and MODELS[DEFAULT_MODEL].int8
    assert (get_model("lite0").image_size, get_model("lite2").image_size) == (224, 260)
    assert get_model("lite0-int8").float_name == "lite0"
    assert len({spec.stem for spec in MODELS.values()}) == len(MODELS)  # one cache name per model


def test_unknown_model_names_the_choices() -> None:
    with pytest.raises(ConfigError, match=r"IRAAS_MODEL='resnet50'.*lite0-int8, lite0, lite2"):
        get_model("resnet50")


def test_default_model_reads_iraas_model() -> None:
    assert default_model({}) == "lite0-int8"
    assert default_model({"IRAAS_MODEL": ""}) == "lite0-int8"
    assert default_model({"IRAAS_MODEL": "lite2"}) == "lite2"
    with pytest.raises(ConfigError, match="IRAAS_MODEL"):
        default_model({"IRAAS_MODEL": "LITE0"})  # names are exact
