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
- the videos the face function processed and its durations, from what its processes publish
  (``iraas.classroom.function_metrics``, under ``iraas up``): a LIST and a GET per process.
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
from iraas.classroom.function_metrics import videos_tally
from iraas.classroom.settings import load_face_settings
from iraas.errors import ServiceError
from iraas.images.metrics import DONE, fleet_totals
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

    def __init__(self, settings: ImageSettings, video_output_bucket: str | None) -> None:
        self.settings = settings
        self.video_output_bucket = video_output_bucket  # None: no face pipeline in this stack

    def collect(self) -> Iterator[Metric]:
        settings = self.settings
        s3, sqs = aws.client(settings, "s3"), aws.client(settings, "sqs")
        totals = fleet_totals(s3, settings.image_output_bucket)
        answered = totals.counts.get(DONE, 0)
        yield CounterMetricFamily("iraas_images_answered", "Images classified, by every worker.", answered)
        failed = CounterMetricFamily("iraas_images_failed", "Images that failed for good, by reason.", labels=["reason"])
        for reason, count in sorted(totals.counts.items()):
            if reason != DONE:
                failed.add_metric([reason], count)
        yield failed
        yield HistogramMetricFamily(
            "iraas_answer_latency_seconds", "Seconds from an image's request being queued to its answer being sent.",
            buckets=totals.buckets(), sum_value=totals.seconds_sum,
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
        bucket = self.video_output_bucket
        if bucket:
            videos = videos_tally(s3, bucket)
            processed = CounterMetricFamily(
                "iraas_videos_processed", "Videos whose first-frame CSV the face function wrote, by outcome "
                "(ok, or why no student is in it).", labels=["outcome"],
            )
            for outcome, count in sorted(videos.counts.items()):
                processed.add_metric([outcome], count)
            yield processed
            yield HistogramMetricFamily(
                "iraas_face_function_seconds", "Seconds from a video's first frame to its CSV written.",
                buckets=videos.buckets(), sum_value=videos.seconds_sum,
            )


@functools.lru_cache(maxsize=1)
def registry() -> CollectorRegistry:
    """This process's scrape registry (built once, on the first scrape): under gunicorn's multiprocess
    mode the request counts of every worker process, else this process's."""
    scrape = CollectorRegistry(auto_describe=False)
    if os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
        multiprocess.MultiProcessCollector(scrape)
    else:
        scrape.register(HTTP_REQUESTS)
    scrape.register(StackCollector(load_image_settings(), load_face_settings().video_output_bucket))
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
