"""One typed settings object, read from the environment and checked once at start-up.

Every deployable (web tier, worker, Lambda, OpenStack) reads its settings here. Resource names
come from environment variables (set by SAM/CloudFormation in AWS, by `iraas up` locally); any
that are missing are filled from the embedded stack's ``stack.json``, so that ``chalice local``
inside ``chalice_web/`` finds a running ``iraas up`` without extra set-up.
"""

from __future__ import annotations

import json
import os
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from iraas.errors import ConfigError
from iraas.images.classify.models import DEFAULT_MODEL, get_model
from iraas.scaling.policy import ScalingConfig

# Logical ids in template.yaml -> environment variables that carry their physical name or URL.
RESOURCE_ENV: dict[str, str] = {
    "ImageInputBucket": "IRAAS_IMAGE_INPUT_BUCKET",
    "ImageOutputBucket": "IRAAS_IMAGE_OUTPUT_BUCKET",
    "RequestQueue": "IRAAS_REQUEST_QUEUE_URL",
    "ResponseQueue": "IRAAS_RESPONSE_QUEUE_URL",
    "RequestDeadLetterQueue": "IRAAS_DEAD_LETTER_QUEUE_URL",
    # The classroom face pipeline; optional for the image deployables (see load_face_settings).
    "VideoInputBucket": "IRAAS_VIDEO_INPUT_BUCKET",
    "VideoOutputBucket": "IRAAS_VIDEO_OUTPUT_BUCKET",
    "StudentsTable": "IRAAS_STUDENTS_TABLE",
}

# The Settings field that holds each image resource's physical name or URL.
IMAGE_RESOURCE_FIELDS: dict[str, str] = {
    "ImageInputBucket": "image_input_bucket",
    "ImageOutputBucket": "image_output_bucket",
    "RequestQueue": "request_queue_url",
    "ResponseQueue": "response_queue_url",
    "RequestDeadLetterQueue": "dead_letter_queue_url",  # optional: only /v1/stats reads it
}

MIB = 1024 * 1024
# Multipart framing (boundaries, part headers) a body may carry on top of the largest image.
MULTIPART_HEADROOM = 64 * 1024


@dataclass(frozen=True)
class Limits:
    """Explicit bounds on what the service accepts and how long it waits."""

    # 10 MiB is API Gateway's payload limit; behind Lambda the effective body limit is ~4.5 MiB
    # (6 MB invocation payload, base64-encoded), see the README.
    max_image_bytes: int = 10 * MIB
    # Decompression-bomb guard, checked from the image header before any pixel is decoded. The
    # classifier sees 224 x 224, so 25 MP (a 6000 x 4000 camera photo) loses nothing; it bounds one
    # decode to 100 MB in the web tier, 200 MB in the worker (see iraas/images/validation.py).
    max_image_pixels: int = 25_000_000
    # Longest a request may wait for its result. Lambda behind API Gateway must answer within
    # 29 s, so the template sets 25 there.
    max_wait_s: float = 30.0
    default_wait_s: float = 30.0

    @property
    def max_body_bytes(self) -> int:
        """The largest request body that can still hold an acceptable image (multipart framed)."""
        return self.max_image_bytes + MULTIPART_HEADROOM


@dataclass(frozen=True)
class WorkerSettings:
    """Tuning of the app-tier loop."""

    batch_size: int = 8  # messages per receive (SQS allows 1-10)
    long_poll_s: int = 20  # SQS long poll (0-20)
    visibility_timeout_s: int = 60  # how long a received batch stays hidden while it is worked on
    retry_delay_s: int = 2  # a failed request becomes visible again after this long
    threads: int = 0  # onnxruntime intra-op threads; 0 lets onnxruntime decide


@dataclass(frozen=True)
class AwsSettings:
    """Where AWS is: the part every deployable's settings share (image service and classroom)."""

    region: str
    endpoint_url: str | None  # None: AWS itself; a loopback URL: the embedded stack
    home: Path  # the embedded stack's state folder (stack.json)

    @property
    def stack_file(self) -> Path:
        return self.home / "stack.json"


@dataclass(frozen=True)
class Settings(AwsSettings):
    """The image service's settings: its resources, limits, the worker and the scaler."""

    image_input_bucket: str
    image_output_bucket: str
    request_queue_url: str
    response_queue_url: str
    dead_letter_queue_url: str | None
    model_dir: Path
    limits: Limits = field(default_factory=Limits)
    worker: WorkerSettings = field(default_factory=WorkerSettings)
    scaling: ScalingConfig = field(default_factory=ScalingConfig)
    # The EC2 fleet (set in AWS by template.yaml; unused by the embedded stack).
    fleet_name: str = "iraas"
    launch_template_id: str | None = None
    scaler_invocation_s: float = 55.0  # how long one scheduled invocation keeps scaling
    model: str = DEFAULT_MODEL  # the classifier (IRAAS_MODEL): a name in iraas.images.classify.models
    # Web processes create their reply queues under this prefix (template.yaml: "<stack>-reply-"),
    # which the IAM policies name; workers reply only to queues with it.
    reply_queue_prefix: str = "iraas-reply-"


def default_home(env: Mapping[str, str] | None = None, cwd: Path | None = None) -> Path:
    """``$IRAAS_HOME``, else the nearest ``.iraas`` folder at or above the working directory.

    Looking upwards lets ``chalice local`` run inside ``chalice_web/`` and still find the stack
    that ``iraas up`` started from the repository root.
    """
    env = os.environ if env is None else env
    if env.get("IRAAS_HOME"):
        return Path(env["IRAAS_HOME"]).expanduser()
    here = (cwd or Path.cwd()).resolve()
    for folder in (here, *here.parents):
        if (folder / ".iraas" / "stack.json").is_file():
            return folder / ".iraas"
    return here / ".iraas"


def default_model_dir(env: Mapping[str, str] | None = None) -> Path:
    """Where the ONNX model is cached: ``$IRAAS_MODEL_DIR``, else ``~/.cache/iraas/models``."""
    env = os.environ if env is None else env
    cache = Path(env.get("XDG_CACHE_HOME") or Path.home() / ".cache")
    return Path(env.get("IRAAS_MODEL_DIR") or cache / "iraas" / "models").expanduser()


def default_model(env: Mapping[str, str] | None = None) -> str:
    """The classifier to run: ``$IRAAS_MODEL`` (checked), else ``lite0-int8``."""
    env = os.environ if env is None else env
    return get_model(env.get("IRAAS_MODEL") or DEFAULT_MODEL).name


def read_stack_file(path: Path) -> dict[str, Any]:
    """The embedded stack's description: endpoint, region and logical id -> physical name."""
    try:
        data = json.loads(path.read_text())
    except FileNotFoundError:
        return {}
    except (OSError, ValueError) as exc:
        raise ConfigError(f"cannot read {path}: {exc}") from exc
    if not isinstance(data, dict) or not isinstance(data.get("resources", {}), dict):
        raise ConfigError(f"{path} is not a stack description")
    return data


def number(env: Mapping[str, str], name: str, default: float, lo: float, hi: float) -> float:
    raw = env.get(name)
    if raw in (None, ""):
        return default
    try:
        value = float(raw)
    except ValueError:
        raise ConfigError(f"{name}={raw!r} is not a number") from None
    if not lo <= value <= hi:
        raise ConfigError(f"{name}={raw} is outside [{lo:g}, {hi:g}]")
    return value


def integer(env: Mapping[str, str], name: str, default: int, lo: int, hi: int) -> int:
    value = number(env, name, default, lo, hi)
    if value != int(value):
        raise ConfigError(f"{name}={value} is not a whole number")
    return int(value)


def load_aws(env: Mapping[str, str]) -> tuple[AwsSettings, dict[str, str]]:
    """Where AWS is, and the embedded stack's resources (logical id -> physical name), if any.

    The region and endpoint come from ``IRAAS_*``, else the running embedded stack, else the AWS
    variables; resource names are looked up by each loader through ``resource``.
    """
    home = default_home(env)
    stack = read_stack_file(home / "stack.json")
    region = (
        env.get("IRAAS_REGION")
        or stack.get("region")
        or env.get("AWS_REGION")
        or env.get("AWS_DEFAULT_REGION")
        or "us-east-1"
    )
    endpoint = env.get("IRAAS_ENDPOINT_URL") or stack.get("endpoint_url") or None
    return AwsSettings(region=region, endpoint_url=endpoint, home=home), dict(stack.get("resources", {}))


def resource(env: Mapping[str, str], resources: Mapping[str, str], logical_id: str) -> str | None:
    """A resource's physical name or URL: its ``IRAAS_*`` variable, else the embedded stack's."""
    return env.get(RESOURCE_ENV[logical_id]) or resources.get(logical_id) or None


def missing_resource(logical_id: str, home: Path) -> ConfigError:
    return ConfigError(
        f"{RESOURCE_ENV[logical_id]} is not set and no running stack at {home / 'stack.json'} "
        f"provides {logical_id}; start one with `iraas up` or set the variable to the deployed resource"
    )


def load_settings(env: Mapping[str, str] | None = None) -> Settings:
    """Read and check every setting; raise ConfigError naming what is wrong."""
    env = dict(os.environ if env is None else env)
    where, resources = load_aws(env)

    def required(logical_id: str) -> str:
        value = resource(env, resources, logical_id)
        if not value:
            raise missing_resource(logical_id, where.home)
        return value

    max_wait = number(env, "IRAAS_MAX_WAIT_S", Limits.max_wait_s, 0, 900)
    limits = Limits(
        max_image_bytes=integer(env, "IRAAS_MAX_IMAGE_BYTES", Limits.max_image_bytes, 1024, 100 * MIB),
        max_image_pixels=integer(
            env, "IRAAS_MAX_IMAGE_PIXELS", Limits.max_image_pixels, 1024, 500_000_000
        ),
        max_wait_s=max_wait,
        default_wait_s=min(max_wait, Limits.default_wait_s),
    )
    worker = WorkerSettings(
        batch_size=integer(env, "IRAAS_WORKER_BATCH", WorkerSettings.batch_size, 1, 10),
        long_poll_s=integer(env, "IRAAS_WORKER_LONG_POLL_S", WorkerSettings.long_poll_s, 0, 20),
        visibility_timeout_s=integer(
            env, "IRAAS_WORKER_VISIBILITY_S", WorkerSettings.visibility_timeout_s, 5, 43_200
        ),
        retry_delay_s=integer(env, "IRAAS_WORKER_RETRY_DELAY_S", WorkerSettings.retry_delay_s, 0, 900),
        threads=integer(env, "IRAAS_ORT_THREADS", WorkerSettings.threads, 0, 256),
    )
    model_dir = default_model_dir(env)
    max_workers = integer(env, "IRAAS_MAX_WORKERS", ScalingConfig.max_workers, 0, 1000)
    try:
        scaling = ScalingConfig(
            max_workers=max_workers,
            min_workers=integer(env, "IRAAS_MIN_WORKERS", ScalingConfig.min_workers, 0, 1000),
            requests_per_worker=integer(
                env, "IRAAS_REQUESTS_PER_WORKER", ScalingConfig.requests_per_worker, 1, 10_000
            ),
            tick_s=number(env, "IRAAS_SCALER_TICK_S", ScalingConfig.tick_s, 0.1, 60),
            scale_in_after_s=number(
                env, "IRAAS_SCALE_IN_AFTER_S", ScalingConfig.scale_in_after_s, 0, 3600
            ),
            idle_s=number(env, "IRAAS_WORKER_IDLE_S", ScalingConfig.idle_s, 0, 3600),
        )
    except ValueError as exc:
        raise ConfigError(f"IRAAS_MIN_WORKERS/IRAAS_MAX_WORKERS: {exc}") from None
    return Settings(
        region=where.region,
        endpoint_url=where.endpoint_url,
        home=where.home,
        image_input_bucket=required("ImageInputBucket"),
        image_output_bucket=required("ImageOutputBucket"),
        request_queue_url=required("RequestQueue"),
        response_queue_url=required("ResponseQueue"),
        dead_letter_queue_url=resource(env, resources, "RequestDeadLetterQueue"),
        model_dir=model_dir,
        limits=limits,
        worker=worker,
        scaling=scaling,
        fleet_name=env.get("IRAAS_FLEET_NAME") or "iraas",
        launch_template_id=env.get("IRAAS_LAUNCH_TEMPLATE_ID") or None,
        scaler_invocation_s=number(env, "IRAAS_SCALER_INVOCATION_S", 55.0, 0, 900),
        model=default_model(env),
        reply_queue_prefix=_queue_prefix(env, "IRAAS_REPLY_QUEUE_PREFIX", Settings.reply_queue_prefix),
    )


def _queue_prefix(env: Mapping[str, str], name: str, default: str) -> str:
    value = env.get(name) or default
    if not re.fullmatch(r"[A-Za-z0-9_-]{1,48}", value):  # + 32 hex digits <= 80, SQS's longest name
        raise ConfigError(f"{name}={value!r} must be 1-48 letters, digits, '-' or '_' (an SQS name prefix)")
    return value


def settings_env(settings: Settings) -> dict[str, str]:
    """The environment that reproduces ``settings`` in a child process."""
    env = {
        "IRAAS_REGION": settings.region,
        "IRAAS_HOME": str(settings.home),
        "IRAAS_MODEL_DIR": str(settings.model_dir),
    }
    for logical_id, name in IMAGE_RESOURCE_FIELDS.items():
        if getattr(settings, name):
            env[RESOURCE_ENV[logical_id]] = getattr(settings, name)
    if settings.endpoint_url:
        env["IRAAS_ENDPOINT_URL"] = settings.endpoint_url
    env["IRAAS_REPLY_QUEUE_PREFIX"] = settings.reply_queue_prefix
    env["IRAAS_MODEL"] = settings.model
    return env

