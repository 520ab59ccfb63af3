"""boto3 clients, created once per process and lazily, pointed at AWS or the embedded endpoint."""

from __future__ import annotations

import threading
from functools import lru_cache
from typing import Any
from urllib.parse import urlparse

import boto3
from botocore.config import Config

from iraas.config import Settings

# Explicit network limits: a request never hangs on a slow endpoint, and retries are bounded.
_BOTO_CONFIG = Config(
    connect_timeout=5,
    read_timeout=30,  # above SQS's 20 s long poll
    retries={"max_attempts": 4, "mode": "standard"},
    max_pool_connections=64,  # the web tier serves many threads from one process
)

_lock = threading.Lock()
_LOOPBACK = {"127.0.0.1", "localhost", "::1"}


@lru_cache(maxsize=None)
def _session(region: str) -> boto3.session.Session:
    return boto3.session.Session(region_name=region)


def client(settings: Settings, service: str) -> Any:
    """The shared boto3 client for ``service`` (clients are thread-safe; sessions are not)."""
    return _client(service, settings.region, settings.endpoint_url)


@lru_cache(maxsize=None)
def _client(service: str, region: str, endpoint_url: str | None) -> Any:
    # The embedded endpoint on loopback gets moto's dummy credentials: a developer running
    # `chalice local` needs none, and real credentials are never sent to a local endpoint.
    local = endpoint_url is not None and urlparse(endpoint_url).hostname in _LOOPBACK
    credentials = {"aws_access_key_id": "testing", "aws_secret_access_key": "testing"} if local else {}
    with _lock:  # creating clients from one session is not thread-safe
        return _session(region).client(
            service, endpoint_url=endpoint_url, config=_BOTO_CONFIG, **credentials
        )


def reset_clients() -> None:
    """Forget cached clients (tests that switch endpoints)."""
    _client.cache_clear()
    _session.cache_clear()
