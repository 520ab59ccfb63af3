"""iraas/images/settings.py: the image service's settings are read once and checked; a wrong value
fails at start-up naming the variable, and what the environment lacks comes from a running stack."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from iraas.config import RESOURCE_ENV
from iraas.errors import ConfigError
from iraas.images.model.models import DEFAULT_MODEL
from iraas.images.settings import ImageSettings, load_image_settings

RESOURCES = {
    "ImageInputBucket": "in-bucket",
    "ImageOutputBucket": "out-bucket",
    "RequestQueue": "http://127.0.0.1:5000/123/requests",
    "ResponseQueue": "http://127.0.0.1:5000/123/responses",
    "RequestDeadLetterQueue": "http://127.0.0.1:5000/123/dlq",
}


def env_for(tmp_path, **extra):
    env = {RESOURCE_ENV[k]: v for k, v in RESOURCES.items()}
    return {"IRAAS_HOME": str(tmp_path), **env, **extra}


def test_resources_come_from_the_environment(tmp_path):
    settings = load_image_settings(env_for(tmp_path))
    assert settings.image_input_bucket == "in-bucket"
    assert settings.endpoint_url is None  # real AWS unless told otherwise
    assert settings.limits.max_image_bytes == 10 * 1024 * 1024


def test_a_running_stack_fills_what_the_environment_lacks(tmp_path):
    (tmp_path / "stack.json").write_text(
        json.dumps({"endpoint_url": "http://127.0.0.1:5000", "region": "eu-west-1", "resources": RESOURCES})
    )
    settings = load_image_settings({"IRAAS_HOME": str(tmp_path)})
    assert (settings.endpoint_url, settings.region) == ("http://127.0.0.1:5000", "eu-west-1")
    assert settings.request_queue_url == RESOURCES["RequestQueue"]


def test_a_missing_resource_says_what_to_do(tmp_path):
    with pytest.raises(ConfigError, match="IRAAS_IMAGE_INPUT_BUCKET.*iraas up"):
        load_image_settings({"IRAAS_HOME": str(tmp_path)})


@pytest.mark.parametrize(
    ("name", "value"),
    [("IRAAS_MAX_IMAGE_BYTES", "lots"), ("IRAAS_WORKER_BATCH", "11"), ("IRAAS_MAX_WAIT_S", "-1"), ("IRAAS_WORKER_BATCH", "2.5")],
)
def test_bad_limits_fail_at_start_up(tmp_path, name, value):
    with pytest.raises(ConfigError, match=name):
        load_image_settings(env_for(tmp_path, **{name: value}))


def test_waits_longer_than_the_limit_are_capped(tmp_path):
    settings = load_image_settings(env_for(tmp_path, IRAAS_MAX_WAIT_S="25"))
    assert settings.limits.max_wait_s == 25 and settings.limits.default_wait_s == 25


def test_settings_carry_the_checked_model(tmp_path: Path) -> None:
    env = {"IRAAS_HOME": str(tmp_path), **{var: f"x-{i}" for i, var in enumerate(RESOURCE_ENV.values())}}
    assert load_image_settings(env).model == "lite0-int8"
    assert load_image_settings({**env, "IRAAS_MODEL": "lite0"}).model == "lite0"
    with pytest.raises(ConfigError, match="IRAAS_MODEL='lite9'"):
        load_image_settings({**env, "IRAAS_MODEL": "lite9"})
    assert ImageSettings.model == DEFAULT_MODEL


def test_settings_take_a_model_of_ones_own_and_hand_it_to_child_processes(tmp_path: Path) -> None:
    from iraas.images.settings import settings_env

    env = {"IRAAS_HOME": str(tmp_path), **{var: f"x-{i}" for i, var in enumerate(RESOURCE_ENV.values())}}
    for model in ("/srv/models/resnet18.onnx", "resnet18.onnx"):  # a path, or a file in the model folder
        settings = load_image_settings({**env, "IRAAS_MODEL": model, "IRAAS_MODEL_DIR": str(tmp_path / "models")})
        assert settings.model == model
        assert load_image_settings(settings_env(settings)).model == model  # a worker `iraas up` starts reads the same
    with pytest.raises(ConfigError, match=r"IRAAS_MODEL='models/resnet18.onnx': name a model of your own by its absolute path"):
        load_image_settings({**env, "IRAAS_MODEL": "models/resnet18.onnx"})
    with pytest.raises(ConfigError, match=r"IRAAS_MODEL='resnet18' is not a model; choose one of lite0-int8, lite0, lite2 "
                                          r"\(default lite0-int8\), or name a model of your own"):
        load_image_settings({**env, "IRAAS_MODEL": "resnet18"})


def test_workers_announce_answers_only_when_told_to(tmp_path):
    # On AWS nobody reads the response queue; `iraas up` sets IRAAS_WORKER_ANNOUNCE for its workers.
    assert load_image_settings(env_for(tmp_path)).worker.announce is False
    assert load_image_settings(env_for(tmp_path, IRAAS_WORKER_ANNOUNCE="1")).worker.announce is True
    assert load_image_settings(env_for(tmp_path, IRAAS_WORKER_ANNOUNCE="off")).worker.announce is False
    with pytest.raises(ConfigError, match="IRAAS_WORKER_ANNOUNCE='sometimes'"):
        load_image_settings(env_for(tmp_path, IRAAS_WORKER_ANNOUNCE="sometimes"))
