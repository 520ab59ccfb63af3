"""One typed settings object, read from the environment and checked once at start-up.

Every deployable (web tier, worker, Lambda, OpenStack) reads its settings here. Resource names
come from environment variables (set by SAM/CloudFormation in AWS, by `iraas up` locally); any
that are missing are filled from the embedded stack's ``stack.json``, so that ``chalice local``
inside ``chalice_web/`` finds a running ``iraas up`` without extra set-up.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Mapping

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
    "RequestDeadLetterQueue": "dead_letter_queue_url",
}
OPTIONAL_RESOURCES = {"RequestDeadLetterQueue"}  # only /v1/stats reads it

MIB = 1024 * 1024


class ConfigError(ValueError):
    """A setting is missing or out of range; raised at start-up, never mid-request."""


@dataclass(frozen=True)
class Limits:
    """Explicit bounds on what the service accepts and how long it waits."""

    # 10 MiB is API Gateway's payload limit; behind Lambda the effective body limit is ~4.5 MiB
    # (6 MB invocation payload, base64-encoded), see the README.
    max_image_bytes: int = 10 * MIB
    # Decompression-bomb guard, checked from the image header before any pixel is decoded.
    max_image_pixels: int = 50_000_000
    # Longest a request may wait for its result. Lambda behind API Gateway must answer within
    # 29 s, so the template sets 25 there.
    max_wait_s: float = 30.0
    default_wait_s: float = 30.0


@dataclass(frozen=True)
class WorkerSettings:
    """Tuning of the app-tier loop."""

    batch_size: int = 8  # messages per receive (SQS allows 1-10)
    long_poll_s: int = 20  # SQS long poll (0-20)
    visibility_timeout_s: int = 60  # how long a received batch stays hidden while it is worked on
    retry_delay_s: int = 2  # a failed request becomes visible again after this long
    threads: int = 0  # onnxruntime intra-op threads; 0 lets onnxruntime decide


@dataclass(frozen=True)
class Settings:
    region: str
    endpoint_url: str | None
    image_input_bucket: str
    image_output_bucket: str
    request_queue_url: str
    response_queue_url: str
    dead_letter_queue_url: str | None
    model_dir: Path
    home: Path
    limits: Limits = field(default_factory=Limits)
    worker: WorkerSettings = field(default_factory=WorkerSettings)
    scaling: ScalingConfig = field(default_factory=ScalingConfig)
    # The EC2 fleet (set in AWS by template.yaml; unused by the embedded stack).
    fleet_name: str = "iraas"
    launch_template_id: str | None = None
    scaler_invocation_s: float = 55.0  # how long one scheduled invocation keeps scaling

    @property
    def stack_file(self) -> Path:
        return self.home / "stack.json"


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


def read_stack_file(path: Path) -> dict:
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


def _number(env: Mapping[str, str], name: str, default: float, lo: float, hi: float) -> float:
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


def _int(env: Mapping[str, str], name: str, default: int, lo: int, hi: int) -> int:
    value = _number(env, name, default, lo, hi)
    if value != int(value):
        raise ConfigError(f"{name}={value} is not a whole number")
    return int(value)


def load_settings(env: Mapping[str, str] | None = None) -> Settings:
    """Read and check every setting; raise ConfigError naming what is wrong."""
    env = dict(os.environ if env is None else env)
    home = default_home(env)
    stack = read_stack_file(home / "stack.json")
    resources = stack.get("resources", {})

    def resource(logical_id: str, required: bool = True) -> str | None:
        var = RESOURCE_ENV[logical_id]
        value = env.get(var) or resources.get(logical_id)
        if not value and required:
            raise ConfigError(
                f"{var} is not set and no running stack was found at {home / 'stack.json'}; "
                "start one with `iraas up` or set the variable to the deployed resource"
            )
        return value or None

    endpoint = env.get("IRAAS_ENDPOINT_URL") or stack.get("endpoint_url") or None
    region = (
        env.get("IRAAS_REGION")
        or stack.get("region")
        or env.get("AWS_REGION")
        or env.get("AWS_DEFAULT_REGION")
        or "us-east-1"
    )
    max_wait = _number(env, "IRAAS_MAX_WAIT_S", Limits.max_wait_s, 0, 900)
    limits = Limits(
        max_image_bytes=_int(env, "IRAAS_MAX_IMAGE_BYTES", Limits.max_image_bytes, 1024, 100 * MIB),
        max_image_pixels=_int(
            env, "IRAAS_MAX_IMAGE_PIXELS", Limits.max_image_pixels, 1024, 500_000_000
        ),
        max_wait_s=max_wait,
        default_wait_s=min(max_wait, Limits.default_wait_s),
    )
    worker = WorkerSettings(
        batch_size=_int(env, "IRAAS_WORKER_BATCH", WorkerSettings.batch_size, 1, 10),
        long_poll_s=_int(env, "IRAAS_WORKER_LONG_POLL_S", WorkerSettings.long_poll_s, 0, 20),
        visibility_timeout_s=_int(
            env, "IRAAS_WORKER_VISIBILITY_S", WorkerSettings.visibility_timeout_s, 5, 43_200
        ),
        retry_delay_s=_int(env, "IRAAS_WORKER_RETRY_DELAY_S", WorkerSettings.retry_delay_s, 0, 900),
        threads=_int(env, "IRAAS_ORT_THREADS", WorkerSettings.threads, 0, 256),
    )
    model_dir = default_model_dir(env)
    max_workers = _int(env, "IRAAS_MAX_WORKERS", ScalingConfig.max_workers, 0, 1000)
    try:
        scaling = ScalingConfig(
            max_workers=max_workers,
            min_workers=_int(env, "IRAAS_MIN_WORKERS", ScalingConfig.min_workers, 0, 1000),
            requests_per_worker=_int(
                env, "IRAAS_REQUESTS_PER_WORKER", ScalingConfig.requests_per_worker, 1, 10_000
            ),
            tick_s=_number(env, "IRAAS_SCALER_TICK_S", ScalingConfig.tick_s, 0.1, 60),
            scale_in_after_s=_number(
                env, "IRAAS_SCALE_IN_AFTER_S", ScalingConfig.scale_in_after_s, 0, 3600
            ),
            idle_s=_number(env, "IRAAS_WORKER_IDLE_S", ScalingConfig.idle_s, 0, 3600),
        )
    except ValueError as exc:
        raise ConfigError(f"IRAAS_MIN_WORKERS/IRAAS_MAX_WORKERS: {exc}") from None
    return Settings(
        region=region,
        endpoint_url=endpoint,
        **{
            name: resource(logical_id, required=logical_id not in OPTIONAL_RESOURCES)
            for logical_id, name in IMAGE_RESOURCE_FIELDS.items()
        },
        model_dir=model_dir,
        home=home,
        limits=limits,
        worker=worker,
        scaling=scaling,
        fleet_name=env.get("IRAAS_FLEET_NAME") or "iraas",
        launch_template_id=env.get("IRAAS_LAUNCH_TEMPLATE_ID") or None,
        scaler_invocation_s=_number(env, "IRAAS_SCALER_INVOCATION_S", 55.0, 0, 900),
    )


# Largest distance between two dlib descriptors that still counts as the same person. Measured on
# the shared photos (`make bench-faces`): same person at most 0.52, different people at least 0.63;
# 0.55 sits in that gap, a little stricter than face_recognition's 0.6 because a false match
# puts the wrong student on the list.
DEFAULT_FACE_TOLERANCE = 0.55


@dataclass(frozen=True)
class FaceSettings:
    """The face pipeline's settings: its resources, the matching tolerance, input bounds."""

    region: str
    endpoint_url: str | None
    video_input_bucket: str | None
    video_output_bucket: str | None
    students_table: str | None
    tolerance: float = DEFAULT_FACE_TOLERANCE
    max_video_bytes: int = 512 * MIB  # the function's /tmp holds the whole video
    max_frame_pixels: int = 40_000_000  # above 8K; a larger first frame is refused, not decoded
    engine: str = "dlib"
    facenet_weights: Path | None = None

    def require(self, *fields: str) -> "FaceSettings":
        """Check that the named resources are configured; raise ConfigError naming the variable."""
        ids = {"video_input_bucket": "VideoInputBucket", "video_output_bucket": "VideoOutputBucket",
               "students_table": "StudentsTable"}
        for name in fields:
            if not getattr(self, name):
                raise ConfigError(
                    f"{RESOURCE_ENV[ids[name]]} is not set and no running stack provides "
                    f"{ids[name]}; start one with `iraas up` or set the variable"
                )
        return self


def load_face_settings(env: Mapping[str, str] | None = None) -> FaceSettings:
    """The face pipeline's settings. Resources may be absent: callers ``require`` what they use."""
    env = dict(os.environ if env is None else env)
    stack = read_stack_file(default_home(env) / "stack.json")
    resources = stack.get("resources", {})

    def resource(logical_id: str) -> str | None:
        return env.get(RESOURCE_ENV[logical_id]) or resources.get(logical_id) or None

    engine = env.get("IRAAS_FACE_ENGINE") or "dlib"
    if engine not in ("dlib", "facenet"):
        raise ConfigError(f"IRAAS_FACE_ENGINE={engine!r} is not one of 'dlib', 'facenet'")
    weights = env.get("IRAAS_FACENET_WEIGHTS")
    return FaceSettings(
        region=env.get("IRAAS_REGION") or stack.get("region") or env.get("AWS_REGION")
        or env.get("AWS_DEFAULT_REGION") or "us-east-1",
        endpoint_url=env.get("IRAAS_ENDPOINT_URL") or stack.get("endpoint_url") or None,
        video_input_bucket=resource("VideoInputBucket"),
        video_output_bucket=resource("VideoOutputBucket"),
        students_table=resource("StudentsTable"),
        tolerance=_number(env, "IRAAS_FACE_TOLERANCE", DEFAULT_FACE_TOLERANCE, 0.05, 2.0),
        max_video_bytes=_int(env, "IRAAS_MAX_VIDEO_BYTES", FaceSettings.max_video_bytes, 1024, 10 * 1024 * MIB),
        max_frame_pixels=_int(env, "IRAAS_MAX_FRAME_PIXELS", FaceSettings.max_frame_pixels, 1024, 500_000_000),
        engine=engine,
        facenet_weights=Path(weights).expanduser() if weights else None,
    )


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
    return env

