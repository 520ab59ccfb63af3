"""``GET /metrics``: the stack in Prometheus' text format, where the web tier is a long-running
server (``iraas up``, gunicorn, the OpenStack server). On Lambda CloudWatch is the metrics system
and the route does not exist: it is served here, beside the Chalice app, not as one of its routes.

Behind the same key as the API (``x-api-key``, or ``Authorization: Bearer <key>`` as Prometheus'
``authorization`` setting sends it). What a scrape reads, each with the calls it costs (never one
per image):

- the HTTP requests this server answered, by route and status (counted in-process; under gunicorn
  prometheus-client's multiprocess mode adds up its worker processes: ``PROMETHEUS_MULTIPROC_DIR``);
- the images answered and failed (by reason) and the answer latency histogram, summed from what the
  workers already publish with their heartbeat (``iraas.images.metrics.fleet_totals``: a LIST and a
  GET per worker), so a scrape sees an answer within a heartbeat or two;
- the request queue (visible and in flight) and the dead letters: a GetQueueAttributes each;
- the fleet (running, desired): one GET of the scaler's published status;
- the completion callbacks still to send and given up on, where callbacks are on: a call each;
- the videos processed (their CSVs in the output bucket): a LIST per 1,000 videos.
"""

from __future__ import annotations

import functools
import json
import os
from collections.abc import Iterator, Mapping
from typing import Any

from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, Counter, generate_latest, multiprocess
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, HistogramMetricFamily, Metric
from prometheus_client.registry import Collector

from iraas import aws
from iraas.classroom.settings import load_face_settings
from iraas.errors import ServiceError
from iraas.images.metrics import LATENCY_BOUNDS_S, fleet_totals
from iraas.images.settings import ImageSettings, load_image_settings
from iraas.queues import queue_depth
from iraas.scaling.status import S3StatusStore
from iraas.web.auth import API_KEY_HEADER, key_matches, load_auth_settings, missing_key, wrong_key
from iraas.web.errors import STORAGE_UNAVAILABLE, HttpError, http_error

METRICS_PATH = "/metrics"
UNMATCHED_ROUTE = "unmatched"  # a path no route serves: one label value, whatever the path

# Counted by the server in-process; registered with the scrape's registry below (no default one).
HTTP_REQUESTS = Counter(
    "iraas_http_requests", "HTTP requests answered, by route (its pattern) and status code.",
    ["route", "code"], registry=None,
)


def count_request(route: str | None, status: int) -> None:
    HTTP_REQUESTS.labels(route or UNMATCHED_ROUTE, str(status)).inc()


class StackCollector(Collector):
    """What the workers, the queues and the fleet report, read at each scrape."""

    def __init__(self, settings: ImageSettings) -> None:
        self.settings = settings

    def collect(self) -> Iterator[Metric]:
        settings = self.settings
        s3, sqs = aws.client(settings, "s3"), aws.client(settings, "sqs")
        totals = fleet_totals(s3, settings.image_output_bucket)
        yield CounterMetricFamily("iraas_images_answered", "Images classified, by every worker.", totals.answered)
        failed = CounterMetricFamily("iraas_images_failed", "Images that failed for good, by reason.", labels=["reason"])
        for reason, count in sorted(totals.failed.items()):
            failed.add_metric([reason], count)
        yield failed
        cumulative, buckets = 0, []
        for bound, count in zip((*LATENCY_BOUNDS_S, float("inf")), totals.hist, strict=True):
            cumulative += count
            buckets.append(("+Inf" if bound == float("inf") else repr(bound), cumulative))
        yield HistogramMetricFamily(
            "iraas_answer_latency_seconds", "Seconds from an image's request being queued to its answer being sent.",
            buckets=buckets, sum_value=totals.latency_sum_s,
        )
        depth = queue_depth(sqs, settings.request_queue_url)
        queue = GaugeMetricFamily("iraas_request_queue_messages", "Requests in the queue.", labels=["state"])
        queue.add_metric(["visible"], depth.visible)
        queue.add_metric(["in_flight"], depth.in_flight)
        yield queue
        if settings.dead_letter_queue_url:
            dead = queue_depth(sqs, settings.dead_letter_queue_url).visible
            yield GaugeMetricFamily("iraas_dead_letter_messages", "Requests that failed 3 receives.", dead)
        fleet = S3StatusStore(s3, settings.image_output_bucket).fleet()
        workers = GaugeMetricFamily("iraas_workers", "App-tier workers, as the scaler last saw them.", labels=["state"])
        workers.add_metric(["running"], fleet.running)
        workers.add_metric(["desired"], fleet.desired)
        yield workers
        if settings.callbacks_enabled and settings.callback_queue_url:
            pending = queue_depth(sqs, settings.callback_queue_url).queued
            yield GaugeMetricFamily("iraas_callbacks_pending", "Completion callbacks still to be sent.", pending)
            if settings.callback_dead_letter_queue_url:
                given_up = queue_depth(sqs, settings.callback_dead_letter_queue_url).visible
                yield GaugeMetricFamily("iraas_callbacks_failed", "Completion callbacks given up on.", given_up)
        videos = _videos_processed(s3)
        if videos is not None:
            yield CounterMetricFamily("iraas_videos_processed", "Videos whose first-frame CSV is written.", videos)


def _videos_processed(s3: Any) -> int | None:
    bucket = load_face_settings().video_output_bucket
    if not bucket:
        return None
    count = 0
    for page in s3.get_paginator("list_objects_v2").paginate(Bucket=bucket):
        count += sum(1 for o in page.get("Contents", []) if o["Key"].endswith(".csv")
                     and not o["Key"].endswith(".attendance.csv"))
    return count


@functools.lru_cache(maxsize=1)
def registry() -> CollectorRegistry:
    """This process's scrape registry (built once, on the first scrape): under gunicorn's multiprocess
    mode the request counts of every worker process, else this process's."""
    scrape = CollectorRegistry(auto_describe=False)
    if os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
        multiprocess.MultiProcessCollector(scrape)
    else:
        scrape.register(HTTP_REQUESTS)
    scrape.register(StackCollector(load_image_settings()))
    return scrape


def metrics_response(headers: Mapping[str, str]) -> dict[str, Any]:
    """The answer to ``GET /metrics`` (a Lambda proxy response, as the gateway's are)."""
    lowered = {name.lower(): value for name, value in headers.items()}
    try:
        _check_key(lowered)
        body = generate_latest(registry())
    except ServiceError as exc:
        return _error_response(http_error(exc))
    except Exception as exc:
        if not aws.is_unavailable(exc):  # after boto3's bounded retries: the scraper tries again
            raise
        return _error_response(http_error(STORAGE_UNAVAILABLE))
    return {"statusCode": 200, "headers": {"Content-Type": CONTENT_TYPE_LATEST}, "multiValueHeaders": {},
            "body": body.decode("utf-8"), "isBase64Encoded": False}


def _error_response(error: HttpError) -> dict[str, Any]:
    return {"statusCode": error.status, "headers": {"Content-Type": "application/json", **error.headers},
            "multiValueHeaders": {}, "body": json.dumps(error.body), "isBase64Encoded": False}


def _check_key(headers: Mapping[str, str]) -> None:
    """The API's key, as ``x-api-key`` or ``Authorization: Bearer``; open where the API is (no keys)."""
    settings = load_auth_settings()
    if not settings.required:
        return
    given = headers.get(API_KEY_HEADER.lower())
    scheme, _, token = headers.get("authorization", "").partition(" ")
    if not given and scheme.lower() == "bearer":
        given = token.strip()
    if not given:
        raise missing_key()
    if not key_matches(given, settings.keys):
        raise wrong_key()
