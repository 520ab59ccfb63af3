"""What every resource handler gets: the endpoint's clients, the template's resolver, the names."""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass
from functools import cached_property
from typing import Any

import boto3
from botocore.client import BaseClient
from botocore.config import Config

from iraas.local.template import Resolver

log = logging.getLogger("iraas.local.provision")


class Clients:
    """boto3 clients for one endpoint, made on first use."""

    def __init__(self, session: boto3.Session, endpoint_url: str | None, region: str) -> None:
        self._session, self._endpoint_url, self._region = session, endpoint_url, region

    def _client(self, service: str, config: Config | None = None) -> BaseClient:
        return self._session.client(
            service, endpoint_url=self._endpoint_url, region_name=self._region, config=config
        )

    @cached_property
    def s3(self) -> BaseClient:
        # Path-style: `bucket.127.0.0.1` does not resolve; AWS itself accepts both styles.
        return self._client("s3", Config(s3={"addressing_style": "path"}))

    @cached_property
    def sqs(self) -> BaseClient:
        return self._client("sqs")

    @cached_property
    def dynamodb(self) -> BaseClient:
        return self._client("dynamodb")

    @cached_property
    def sts(self) -> BaseClient:
        return self._client("sts")


@dataclass
class Context:
    clients: Clients
    resolver: Resolver
    stack_name: str
    region: str

    def prop(self, props: dict[str, Any], name: str, default: Any = None) -> Any:
        """A property, its intrinsic functions evaluated (only the properties a handler uses)."""
        return self.resolver.resolve(props[name]) if name in props else default


# A handler creates (or finds) one resource and returns what Ref gives (None: nothing to record)
# and its Fn::GetAtt attributes.
Handler = Callable[[Context, str, dict[str, Any]], tuple[str | None, dict[str, str]]]


def warn_unapplied(kind: str, logical_id: str, props: dict[str, Any], applied: set[str]) -> None:
    for name in sorted(set(props) - applied):
        log.warning("%s %s: property %s is not applied locally", kind, logical_id, name)


def tag_list(tags: list[dict[str, str]] | None) -> list[dict[str, str]]:
    return [{"Key": str(t["Key"]), "Value": str(t["Value"])} for t in tags or []]
