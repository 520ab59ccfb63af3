"""The callback sender's settings and secret, read and checked once at start-up.

The secret is ``IRAAS_WEBHOOK_SECRET`` (``iraas up``, a developer's shell), else the Secrets Manager
secret ``IRAAS_WEBHOOK_SECRET_ARN`` names (the template creates it with GenerateSecretString), read
once by the sender at its start: its value is never in an environment. Without either, callbacks are
off, and the web tier refuses a request that asks for one (``400 callbacks_disabled``).
"""

from __future__ import annotations

import os
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from iraas.callbacks.policy import CallbackPolicy
from iraas.config import AwsSettings, integer, load_aws, number, required_resource, resource
from iraas.errors import ConfigError

SECRET_ENV = "IRAAS_WEBHOOK_SECRET"
SECRET_ARN_ENV = "IRAAS_WEBHOOK_SECRET_ARN"
ALLOW_ENV = "IRAAS_CALLBACK_ALLOW"
MIN_SECRET_CHARACTERS = 16
MAX_DELAY_S = 900  # SQS's longest DelaySeconds: the retry pause's ceiling


@dataclass(frozen=True)
class CallbackSettings(AwsSettings):
    queue_url: str
    dead_letter_queue_url: str | None  # where failed deliveries are kept (and counted); None: only logged
    policy: CallbackPolicy
    max_attempts: int = 10  # tries of one answer in all, the first included
    retry_base_s: float = 5.0  # the first retry's pause (jittered), doubling up to MAX_DELAY_S
    timeout_s: float = 10.0  # to connect, and then for each read of the receiver's answer


def callbacks_enabled(env: Mapping[str, str] | None = None) -> bool:
    """Whether this stack has a webhook secret, so that requests may ask for callbacks."""
    env = os.environ if env is None else env
    secret = env.get(SECRET_ENV, "")
    if secret and len(secret) < MIN_SECRET_CHARACTERS:
        raise ConfigError(f"{SECRET_ENV} must have at least {MIN_SECRET_CHARACTERS} characters (a random string)")
    return bool(secret or env.get(SECRET_ARN_ENV))


def callback_policy(env: Mapping[str, str], endpoint_url: str | None) -> CallbackPolicy:
    """Who may be called: the embedded stack (an endpoint URL) also calls loopback and plain http."""
    try:
        return CallbackPolicy.from_allow_list(env.get(ALLOW_ENV, ""), local=endpoint_url is not None)
    except ValueError as exc:
        raise ConfigError(f"{ALLOW_ENV}: {exc}") from None


def load_callback_settings(env: Mapping[str, str] | None = None) -> CallbackSettings:
    env = dict(os.environ if env is None else env)
    where, resources = load_aws(env)
    return CallbackSettings(
        region=where.region,
        endpoint_url=where.endpoint_url,
        home=where.home,
        queue_url=required_resource(env, resources, "CallbackQueue", where.home),
        dead_letter_queue_url=resource(env, resources, "CallbackDeadLetterQueue"),
        policy=callback_policy(env, where.endpoint_url),
        max_attempts=integer(env, "IRAAS_CALLBACK_ATTEMPTS", CallbackSettings.max_attempts, 1, 50),
        retry_base_s=number(env, "IRAAS_CALLBACK_RETRY_BASE_S", CallbackSettings.retry_base_s, 0, MAX_DELAY_S),
        timeout_s=number(env, "IRAAS_CALLBACK_TIMEOUT_S", CallbackSettings.timeout_s, 1, 30),
    )


def load_secret(env: Mapping[str, str] | None = None, secrets_client: Callable[[], Any] | None = None) -> bytes:
    """The webhook secret: ``IRAAS_WEBHOOK_SECRET``, else the value of the secret at
    ``IRAAS_WEBHOOK_SECRET_ARN`` (``secrets_client()`` makes the Secrets Manager client)."""
    env = os.environ if env is None else env
    if not callbacks_enabled(env):
        raise ConfigError(f"no webhook secret: set {SECRET_ENV} (or {SECRET_ARN_ENV} to a Secrets Manager secret)")
    if env.get(SECRET_ENV):
        return env[SECRET_ENV].encode()
    if secrets_client is None:
        raise ConfigError(f"{SECRET_ARN_ENV} is set but no Secrets Manager client was given")
    try:
        value = secrets_client().get_secret_value(SecretId=env[SECRET_ARN_ENV])["SecretString"]
    except Exception as exc:  # noqa: BLE001 - any failure here is a start-up error that names the secret
        raise ConfigError(f"cannot read the webhook secret {env[SECRET_ARN_ENV]}: {exc}") from None
    if len(value) < MIN_SECRET_CHARACTERS:
        raise ConfigError(f"the webhook secret {env[SECRET_ARN_ENV]} has fewer than {MIN_SECRET_CHARACTERS} characters")
    return str(value).encode()
