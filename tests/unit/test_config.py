"""Settings are read once and checked: a wrong value fails at start-up, naming the variable."""

from __future__ import annotations

import json

import pytest

from iraas.config import RESOURCE_ENV, default_home
from iraas.errors import ConfigError
from iraas.images.settings import load_image_settings

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


def test_the_stack_is_found_from_a_subfolder(tmp_path):
    (tmp_path / ".iraas").mkdir()
    (tmp_path / ".iraas" / "stack.json").write_text("{}")
    (tmp_path / "chalice_web").mkdir()
    assert default_home({}, cwd=tmp_path / "chalice_web") == tmp_path / ".iraas"


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
