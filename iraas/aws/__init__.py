"""boto3 clients, created once per process and lazily, pointed at AWS or the embedded endpoint.

Also the few AWS facts every part shares: which endpoints are local (and get fake credentials),
what a "not found" or a "try again later" answer looks like, and how a loop waits after its calls
failed (:class:`Backoff`). Faults a test or an operator injects (``IRAAS_FAULTS``) are installed
on each client as it is made (``iraas/aws/faults.py``).
"""

from __future__ import annotations

import os
import random
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from functools import cache
from types import SimpleNamespace
from typing import Any, Protocol
from urllib.parse import urlparse

import boto3
from botocore.config import Config
from botocore.exceptions import ClientError
from botocore.retries.standard import RetryContext, ThrottledRetryableChecker, TransientRetryableChecker

from iraas.aws import faults

# Retries: botocore's standard mode, for every client. A throttling error (S3 SlowDown, SQS and
# DynamoDB throttling) or a transient one (500/502/503/504, a timeout, a dropped connection) is
# retried at most MAX_ATTEMPTS - 1 times, each after a random delay ("full jitter") of up to 1 s, 2 s,
# 4 s for throttling (50 ms, 100 ms, 200 ms for other transient errors), and only while the client's
# retry quota lasts (a token bucket of 500 per client: a throttled retry takes 5, another one 14,
# successes give them back), so an endpoint that keeps failing gets fewer retries, not more. Then
# the error reaches the caller: the worker leaves the request to the queue (retried after
# IRAAS_WORKER_RETRY_DELAY_S, dead-lettered after maxReceiveCount) and pauses; the web tier's
# request fails. Adaptive mode (standard plus a client-side rate limiter) does not fit: its limiter
# slows the whole client, every operation and thread, while AWS throttles per S3 prefix, SQS queue
# or DynamoDB table. On the web tier's shared S3 client a SlowDown on one caller's uploads would
# slow every request's upload and result read; on the worker, the fetches that are not throttled.
# The student import retries DynamoDB's unprocessed keys and its cancelled transactions with its own
# backoff (botocore retries neither). And boto3's guide calls adaptive mode experimental, liable to
# change.
MAX_ATTEMPTS = 4  # the first call and 3 retries (botocore's "max_attempts" counts only the retries)
RETRY_MODE = "standard"

# Explicit network limits: a request never hangs on a slow endpoint, and retries are bounded.
_BOTO_CONFIG = Config(
    connect_timeout=5,
    read_timeout=30,  # above SQS's 20 s long poll
    retries={"total_max_attempts": MAX_ATTEMPTS, "mode": RETRY_MODE},
    max_pool_connections=64,  # the web tier serves many threads from one process
)

LOOPBACK_HOSTS = frozenset({"127.0.0.1", "localhost", "::1"})

# What processes talking to the embedded endpoint sign with: moto accepts any credentials, and
# fake ones keep a developer's real AWS credentials from ever reaching a local endpoint.
_LOCAL_CREDENTIALS = {
    "AWS_ACCESS_KEY_ID": "testing",
    "AWS_SECRET_ACCESS_KEY": "testing",
    "AWS_SESSION_TOKEN": "testing",
    "AWS_SECURITY_TOKEN": "testing",
}

# Error codes S3 answers for a missing object or bucket: GET says NoSuchKey, HEAD has no body and
# says 404, some SDK paths say NotFound.
_NOT_FOUND_CODES = frozenset({"404", "NoSuchKey", "NotFound", "NoSuchBucket"})

_lock = threading.Lock()


class Endpoint(Protocol):
    """What a client needs to know of any settings object: where AWS is."""

    @property
    def region(self) -> str: ...

    @property
    def endpoint_url(self) -> str | None: ...


def local_credentials_env() -> dict[str, str]:
    """Environment variables with the fake credentials of the embedded endpoint (a fresh copy)."""
    return dict(_LOCAL_CREDENTIALS)


def local_credentials() -> dict[str, str]:
    """The same fake credentials as boto3 client or session keyword arguments."""
    return {
        "aws_access_key_id": _LOCAL_CREDENTIALS["AWS_ACCESS_KEY_ID"],
        "aws_secret_access_key": _LOCAL_CREDENTIALS["AWS_SECRET_ACCESS_KEY"],
    }


def is_local_endpoint(endpoint_url: str | None) -> bool:
    """Whether ``endpoint_url`` points at this machine (the embedded stack), not at AWS."""
    return endpoint_url is not None and urlparse(endpoint_url).hostname in LOOPBACK_HOSTS


def is_not_found(exc: BaseException) -> bool:
    """Whether a boto3 error says the object (or bucket) does not exist."""
    return isinstance(exc, ClientError) and error_code(exc) in _NOT_FOUND_CODES


def on_lambda() -> bool:
    """Whether this process is a Lambda execution environment (one request at a time)."""
    return bool(os.environ.get("AWS_LAMBDA_FUNCTION_NAME"))


def error_code(exc: ClientError) -> str:
    return str(exc.response.get("Error", {}).get("Code", ""))


@cache
def _session(region: str) -> boto3.session.Session:
    return boto3.session.Session(region_name=region)


def client(settings: Endpoint, service: str) -> Any:
    """The shared boto3 client for ``service`` (clients are thread-safe; sessions are not)."""
    return _client(service, settings.region, settings.endpoint_url)


@cache
def _client(service: str, region: str, endpoint_url: str | None) -> Any:
    # A developer running `chalice local` against the embedded stack needs no credentials.
    credentials = local_credentials() if is_local_endpoint(endpoint_url) else {}
    plan = faults.from_environ()  # IRAAS_FAULTS: checked here, before the first client exists
    with _lock:  # creating clients from one session is not thread-safe
        made = _session(region).client(
            service, endpoint_url=endpoint_url, config=_BOTO_CONFIG, **credentials
        )
    if plan is not None:
        plan.install(made)
    return made


def reset_clients() -> None:
    """Forget cached clients, and the fault plan and counts they had (tests that switch endpoints)."""
    _client.cache_clear()
    _session.cache_clear()
    faults.reset()


def is_unavailable(exc: BaseException) -> bool:
    """Whether an AWS call failed for a reason that passes (unreachable endpoint, throttling, a
    5xx), once boto3's own bounded retries are spent: the caller should try again later. The same
    test botocore's standard retry mode applies (its throttling and transient checkers), also to an
    error raised from one of these (a send that failed) or marked ``unavailable``."""
    checkers = (ThrottledRetryableChecker(), TransientRetryableChecker())
    current: BaseException | None = exc
    while current is not None:
        if getattr(current, "unavailable", False):
            return True
        if isinstance(current, ClientError):
            status = current.response.get("ResponseMetadata", {}).get("HTTPStatusCode")
            context = RetryContext(attempt_number=1, parsed_response=current.response,
                                   http_response=SimpleNamespace(status_code=status))
        else:
            context = RetryContext(attempt_number=1, caught_exception=current)
        if any(checker.is_retryable(context) for checker in checkers):
            return True
        current = current.__cause__
    return False


# ---- waiting after failed calls ------------------------------------------------------------------
# boto3 already retries each call a few times (above); a loop that still gets an error (the endpoint
# away for longer, e.g. an embedded endpoint restarting) waits before its next try, longer each time
# up to ``cap_s``, so that it neither spins nor stays away long once the endpoint is back.

BACKOFF_BASE_S = 0.25
BACKOFF_CAP_S = 5.0


@dataclass
class Backoff:
    """How a polling loop waits after its AWS calls failed: exponential, jittered, bounded."""

    base_s: float = BACKOFF_BASE_S
    cap_s: float = BACKOFF_CAP_S
    failures: int = 0
    _random: random.Random = field(default_factory=random.Random, repr=False)

    @property
    def next_s(self) -> float:
        """The ceiling of the next wait: base * 2^failures, at most ``cap_s``."""
        return min(self.cap_s, self.base_s * 2 ** min(self.failures, 16))

    def next_wait(self) -> float:
        """Count a failure; the seconds to wait before the next try: random, between half of
        :attr:`next_s` and all of it (jittered, so that many waiters do not come back at once)."""
        wait_s = self._random.uniform(self.next_s / 2, self.next_s)
        self.failures += 1
        return wait_s

    def sleep(self, stopping: Callable[[], bool] = lambda: False) -> float:
        """Wait :meth:`next_wait`, waking early once ``stopping()``; returns the seconds planned."""
        wait_s = self.next_wait()
        deadline = time.monotonic() + wait_s
        while not stopping() and (left := deadline - time.monotonic()) > 0:
            time.sleep(min(left, 0.1))
        return wait_s

    def reset(self) -> None:
        self.failures = 0
