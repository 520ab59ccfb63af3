"""``iraas status``: what a stack is made of and how busy it is.

Read where the other commands read their settings (``IRAAS_*`` variables, else the running
``iraas up``'s ``.iraas/stack.json``), or with ``--url`` from a web tier's ``GET /v1/stats`` (and
``GET /v1/metrics`` where it has that route).
"""

from __future__ import annotations

import json
import socket
import time
from collections.abc import Mapping
from dataclasses import dataclass, field, fields
from typing import Any
from urllib.parse import urlsplit

from iraas import aws
from iraas.config import RESOURCE_ENV, load_aws, read_stack_file, resource
from iraas.errors import UsageError
from iraas.images.metrics import recent_metrics
from iraas.images.settings import ImageSettings
from iraas.queues import QueueDepth, queue_depth
from iraas.scaling.status import FleetStatus, S3StatusStore

LABEL_WIDTH = 13


@dataclass
class StackStatus:
    where: str  # "embedded stack (iraas up)", "AWS"; or the --url
    queue: QueueDepth
    fleet: FleetStatus
    dead_letter: QueueDepth | None = None
    endpoint_url: str | None = None
    region: str | None = None
    web_url: str | None = None
    resources: dict[str, str] = field(default_factory=dict)  # logical id -> physical name or URL
    heartbeats: int | None = None  # workers reporting, and how many of them are on a batch
    busy: int | None = None
    metrics: dict[str, Any] | None = None  # iraas.images.metrics.recent_metrics; None: not available


def check_endpoint(endpoint_url: str | None, stack_file: str) -> None:
    """For the embedded stack, a quick connect first: a stack.json left behind by an ``iraas up``
    that is gone would otherwise cost boto3's retries, then a long message."""
    if not aws.is_local_endpoint(endpoint_url):
        return
    parts = urlsplit(endpoint_url or "")
    try:
        with socket.create_connection((parts.hostname or "127.0.0.1", parts.port or 80), timeout=2):
            pass
    except OSError as exc:
        raise UsageError(
            f"the stack in {stack_file} does not answer at {endpoint_url} ({exc.strerror or exc}); "
            "is `iraas up` still running?"
        ) from None


def gather(settings: ImageSettings, env: Mapping[str, str], now: float | None = None) -> StackStatus:
    """Read the stack's state: a few SQS and S3 calls (a LIST and a GET per recent worker for the
    throughput)."""
    check_endpoint(settings.endpoint_url, str(settings.stack_file))
    now = time.time() if now is None else now
    _, stack_resources = load_aws(env)
    resources = {lid: value for lid in RESOURCE_ENV if (value := resource(env, stack_resources, lid))}
    stack = read_stack_file(settings.stack_file)
    sqs, s3 = aws.client(settings, "sqs"), aws.client(settings, "s3")
    published = S3StatusStore(s3, settings.image_output_bucket)
    beats = published.heartbeats()
    return StackStatus(
        where="embedded stack (iraas up)" if aws.is_local_endpoint(settings.endpoint_url) else "AWS",
        queue=queue_depth(sqs, settings.request_queue_url),
        dead_letter=queue_depth(sqs, settings.dead_letter_queue_url) if settings.dead_letter_queue_url else None,
        fleet=published.fleet(),
        endpoint_url=settings.endpoint_url,
        region=settings.region,
        web_url=stack.get("web_url"),
        resources=resources,
        heartbeats=len(beats),
        busy=sum(beat.busy for beat in beats.values()),
        metrics=recent_metrics(s3, settings.image_output_bucket, now),
    )


def from_stats(url: str, stats: Mapping[str, Any], metrics: dict[str, Any] | None = None) -> StackStatus:
    """A StackStatus from ``GET /v1/stats``'s body (which names no resources) and, where the web
    tier has it, ``GET /v1/metrics``'s."""
    def depth(value: Any) -> QueueDepth:
        value = value if isinstance(value, dict) else {}
        return QueueDepth(visible=int(value.get("visible", 0)), in_flight=int(value.get("in_flight", 0)))

    workers = stats.get("workers")
    known = {f.name for f in fields(FleetStatus)}
    reported = {k: v for k, v in workers.items() if k in known} if isinstance(workers, dict) else {}
    fleet = FleetStatus(**{"running": 0, "desired": 0, "fleet": "none", **reported})
    return StackStatus(
        where=url,
        queue=depth(stats.get("queue")),
        dead_letter=depth(stats["dead_letter"]) if "dead_letter" in stats else None,
        fleet=fleet,
        metrics=metrics,
    )


def fetch(url: str, route: str, timeout_s: float = 10.0) -> dict[str, Any] | None:
    """``GET <url><route>`` as a JSON object, with the API key of ``IRAAS_API_KEY``; None for a 404
    (a web tier without that route). Raises UsageError in one line if the service does not answer,
    refuses the key, or answers other than with JSON."""
    import urllib3

    from iraas.cli.api_key import client_headers, client_refusal
    from iraas.cli.classify.remote import check_url, reason

    url = check_url(url)
    headers = client_headers()
    try:
        response = urllib3.PoolManager().request("GET", f"{url}{route}", headers=headers, timeout=timeout_s, retries=1)
    except urllib3.exceptions.HTTPError as exc:
        raise UsageError(f"no IRaaS service at {url}: {reason(exc)}") from None
    refusal = client_refusal(url, response.status, bool(headers))
    if refusal:
        raise UsageError(refusal)
    if response.status == 404:
        return None
    if response.status != 200:
        raise UsageError(f"{url}{route} answered HTTP {response.status}")
    try:
        body = json.loads(response.data)
    except ValueError:
        body = None
    if not isinstance(body, dict):
        raise UsageError(f"{url}{route} did not answer with a JSON object; is it an IRaaS service?")
    return body


def from_url(url: str) -> StackStatus:
    """What a running web tier reports: ``GET /v1/stats``, and ``GET /v1/metrics`` where it has it."""
    stats = fetch(url, "/v1/stats")
    if stats is None:
        raise UsageError(f"{url} has no /v1/stats; is it an IRaaS service?")
    return from_stats(url, stats, fetch(url, "/v1/metrics"))


_CAPPED_BY = {"cpu": "one per core", "setting": "IRAAS_MAX_WORKERS", "fixed": "iraas up --workers"}


def describe(status: StackStatus, now: float | None = None) -> list[str]:
    """The lines ``iraas status`` prints."""
    now = time.time() if now is None else now

    def row(label: str, text: str) -> str:
        return f"{label:<{LABEL_WIDTH}}{text}"

    lines = [row("stack", status.where + (f", web tier {status.web_url}" if status.web_url else ""))]
    if status.region:
        lines.append(row("AWS", f"endpoint {status.endpoint_url}, " if status.endpoint_url else "") + f"region {status.region}")
    if status.resources:
        width = max(len(lid) for lid in status.resources) + 2
        for n, (lid, name) in enumerate(status.resources.items()):
            lines.append(row("resources" if n == 0 else "", f"{lid:<{width}}{name}"))
    lines.append(row("requests", f"{status.queue.visible} waiting, {status.queue.in_flight} in flight"))
    if status.dead_letter is not None:
        lines.append(row("dead letters", f"{status.dead_letter.queued}"))
    lines.append(row("workers", _workers(status, now)))
    minute = (status.metrics or {}).get("last_minute")
    if isinstance(minute, dict):
        lines.append(row("throughput", _throughput(minute, status.metrics or {})))
    return lines


def _workers(status: StackStatus, now: float) -> str:
    fleet = status.fleet
    if fleet.fleet == "none":
        return "none reported yet (no scaler has published the fleet's size)"
    text = f"{fleet.running} running, {fleet.desired} desired"
    if fleet.max:
        text += f", at most {fleet.max}"
        if fleet.capped_by:
            text += f" ({_CAPPED_BY.get(fleet.capped_by, fleet.capped_by)})"
    if status.heartbeats:
        text += f"; {status.busy} of {status.heartbeats} busy"
    if fleet.updated_at:
        text += f"; {fleet.fleet} fleet, as of {max(0.0, now - fleet.updated_at):.0f} s ago"
    return text


def _throughput(minute: Mapping[str, Any], metrics: Mapping[str, Any]) -> str:
    def ms(value: Any) -> str:
        return "-" if value is None else f"{float(value) * 1000:.0f} ms"

    text = f"{minute.get('answered', 0)} answered in the last minute, {float(minute.get('images_per_s', 0)):.2f} images/s"
    if minute.get("failed"):
        text += f", {minute['failed']} failed"
    if minute.get("answered"):
        text += f"; latency p50 {ms(minute.get('latency_p50_s'))}, p90 {ms(minute.get('latency_p90_s'))}"
    if "workers_reporting" in metrics:
        text += f" ({metrics['workers_reporting']} workers reporting)"
    return text
