"""CallbackFunction: a CallbackQueue event in, each answer POSTed, signed, to the URL its request named.

Thin on purpose: the settings and the secret are read once at cold start (the secret from Secrets
Manager on AWS, ``IRAAS_WEBHOOK_SECRET`` under ``iraas up``), then each record goes to
``iraas.callbacks.sender.CallbackSender``. A record whose retry or failure could not be queued is
reported in ``batchItemFailures`` (the event source's ReportBatchItemFailures), so the queue keeps
it and only it. The same function runs in Lambda (container image, see Dockerfile) and under
``iraas up``'s local runners, which hand it the events as Lambda would.
"""

from __future__ import annotations

import logging
from typing import Any

from iraas import aws, logs
from iraas.callbacks.sender import CallbackSender
from iraas.callbacks.settings import callbacks_enabled, load_callback_settings, load_secret
from iraas.errors import ConfigError

logs.configure()  # under iraas up; Lambda's runtime has its own root handler, so only the level is ours
logging.getLogger("iraas").setLevel(logging.INFO)
log = logging.getLogger("iraas.callbacks")

SETTINGS = load_callback_settings()
# A deployment always names its secret; `iraas up` without one runs no sender (and takes no callbacks).
SENDER = (
    CallbackSender(SETTINGS, load_secret(secrets_client=lambda: aws.client(SETTINGS, "secretsmanager")))
    if callbacks_enabled() else None
)


def lambda_handler(event: dict[str, Any], context: Any) -> dict[str, Any]:
    if SENDER is None:  # jobs stay queued (then go to the dead-letter queue) rather than being sent unsigned
        raise ConfigError("no webhook secret: set IRAAS_WEBHOOK_SECRET (or IRAAS_WEBHOOK_SECRET_ARN)")
    records = event.get("Records") or []
    outcome = SENDER.handle([(record["messageId"], record["body"]) for record in records])
    log.info("callbacks settled", extra={**outcome.counts, "unsettled": len(outcome.unsettled)})
    return {"batchItemFailures": [{"itemIdentifier": message_id} for message_id in outcome.unsettled]}
