"""The image service's settings: its resources, limits, the worker and the model, checked once.

Read by the web tier, the worker and the embedded stack; ``iraas/config.py`` provides the shared
part (where AWS is) and the value parsers, ``iraas/media/uploads.py`` the upload bounds.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import asdict, dataclass, field
from pathlib import Path

from iraas.callbacks.policy import CallbackPolicy
from iraas.callbacks.settings import callback_policy, callbacks_enabled
from iraas.config import (
    RESOURCE_ENV,
    AwsSettings,
    aws_env,
    flag,
    integer,
    load_aws,
    number,
    queue_prefix,
    required_resource,
    resource,
)
from iraas.images.model.models import DEFAULT_MODEL, default_model
from iraas.images.model.runtimes import DEFAULT_RUNTIME, default_runtime
from iraas.media.uploads import UploadLimits, load_upload_limits

# The ImageSettings field that holds each image resource's physical name or URL.
IMAGE_RESOURCE_FIELDS: dict[str, str] = {
    "ImageInputBucket": "image_input_bucket",
    "ImageOutputBucket": "image_output_bucket",
    "RequestQueue": "request_queue_url",
    "ResponseQueue": "response_queue_url",
    "RequestDeadLetterQueue": "dead_letter_queue_url",  # optional: only /v1/stats reads it
    "CallbackQueue": "callback_queue_url",  # optional: where workers put answers to POST
    "CallbackDeadLetterQueue": "callback_dead_letter_queue_url",  # optional: failed callbacks, for /v1/stats
}


@dataclass(frozen=True)
class Limits(UploadLimits):
    """Explicit bounds on what the service accepts (the upload's, see UploadLimits) and how long a
    request waits for its answer."""

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
    threads: int = 0  # inference threads (IRAAS_ORT_THREADS, either runtime); 0 lets the runtime decide
    # Announce each answer on the response queue (IRAAS_WORKER_ANNOUNCE): `iraas up` reads it to print
    # a line per answered request; on AWS nobody reads it, so the workers do not send there.
    announce: bool = False


@dataclass(frozen=True)
class ImageSettings(AwsSettings):
    """The image service's settings: its resources, limits, the worker and the model."""

    image_input_bucket: str
    image_output_bucket: str
    request_queue_url: str
    response_queue_url: str
    dead_letter_queue_url: str | None
    model_dir: Path
    limits: Limits = field(default_factory=Limits)
    worker: WorkerSettings = field(default_factory=WorkerSettings)
    model: str = DEFAULT_MODEL  # the classifier (IRAAS_MODEL): a name in iraas.images.model.models
    runtime: str = DEFAULT_RUNTIME  # what runs it (IRAAS_RUNTIME): a name in iraas.images.model.runtimes
    # Web processes create their reply queues under this prefix (template.yaml: "<stack>-reply-"),
    # which the IAM policies name; workers reply only to queues with it.
    reply_queue_prefix: str = "iraas-reply-"
    callback_queue_url: str | None = None
    callback_dead_letter_queue_url: str | None = None
    # Whether requests may ask for callbacks (the stack has a webhook secret), and to where.
    callbacks_enabled: bool = False
    callback_policy: CallbackPolicy = field(default_factory=CallbackPolicy)


def default_model_dir(env: Mapping[str, str] | None = None) -> Path:
    """Where the ONNX model is cached: ``$IRAAS_MODEL_DIR``, else ``~/.cache/iraas/models``."""
    env = os.environ if env is None else env
    cache = Path(env.get("XDG_CACHE_HOME") or Path.home() / ".cache")
    return Path(env.get("IRAAS_MODEL_DIR") or cache / "iraas" / "models").expanduser()


def load_image_settings(env: Mapping[str, str] | None = None) -> ImageSettings:
    """Read and check every setting of the image service; raise ConfigError naming what is wrong."""
    env = dict(os.environ if env is None else env)
    where, resources = load_aws(env)
    upload = load_upload_limits(env)
    max_wait = number(env, "IRAAS_MAX_WAIT_S", Limits.max_wait_s, 0, 900)
    limits = Limits(
        **asdict(upload),
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
        announce=flag(env, "IRAAS_WORKER_ANNOUNCE"),
    )
    return ImageSettings(
        region=where.region,
        endpoint_url=where.endpoint_url,
        home=where.home,
        image_input_bucket=required_resource(env, resources, "ImageInputBucket", where.home),
        image_output_bucket=required_resource(env, resources, "ImageOutputBucket", where.home),
        request_queue_url=required_resource(env, resources, "RequestQueue", where.home),
        response_queue_url=required_resource(env, resources, "ResponseQueue", where.home),
        dead_letter_queue_url=resource(env, resources, "RequestDeadLetterQueue"),
        model_dir=default_model_dir(env),
        limits=limits,
        worker=worker,
        model=default_model(env),
        runtime=default_runtime(env),
        reply_queue_prefix=queue_prefix(env, "IRAAS_REPLY_QUEUE_PREFIX", ImageSettings.reply_queue_prefix),
        callback_queue_url=resource(env, resources, "CallbackQueue"),
        callback_dead_letter_queue_url=resource(env, resources, "CallbackDeadLetterQueue"),
        callbacks_enabled=callbacks_enabled(env),
        callback_policy=callback_policy(env, where.endpoint_url),
    )


def settings_env(settings: ImageSettings) -> dict[str, str]:
    """The environment that reproduces ``settings`` in a child process."""
    env = {**aws_env(settings), "IRAAS_MODEL_DIR": str(settings.model_dir)}
    for logical_id, name in IMAGE_RESOURCE_FIELDS.items():
        if getattr(settings, name):
            env[RESOURCE_ENV[logical_id]] = getattr(settings, name)
    env["IRAAS_REPLY_QUEUE_PREFIX"] = settings.reply_queue_prefix
    env["IRAAS_MODEL"] = settings.model
    env["IRAAS_RUNTIME"] = settings.runtime
    return env
