"""GET /metrics (iraas/web/prometheus.py) through the gateway every long-running web server uses
(iraas up's, gunicorn's and OpenStack's), against moto, with a real worker that publishes its
metrics: scraped with prometheus-client's own parser before and after a burst."""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from typing import Any

import pytest
from chalice.config import Config
from prometheus_client.parser import text_string_to_metric_families

from iraas import aws
from iraas.classroom import function_metrics
from iraas.classroom.pipeline import VideoOutcome
from iraas.classroom.settings import load_face_settings
from iraas.config import REPO_ROOT
from iraas.images.worker import Worker
from iraas.web import prometheus
from iraas.web.project import ProjectGateway

KEY = "prometheus-test-key-0123456789"
BURST = 5


@pytest.fixture
def gateway(web_app) -> Iterator[ProjectGateway]:
    """The gateway every long-running web server uses, over the app loaded fresh on the moto stack."""
    prometheus.registry.cache_clear()  # this stack's settings
    yield ProjectGateway(web_app.app, Config.create(app_name=web_app.app.app_name))
    prometheus.registry.cache_clear()


def scrape(gateway: ProjectGateway, headers: dict[str, str] | None = None) -> dict[tuple[str, tuple], float]:
    response = gateway.handle_request("GET", "/metrics", headers or {}, None)
    assert response["statusCode"] == 200, response["body"]
    assert response["headers"]["Content-Type"].startswith("text/plain; version=")
    return {
        (sample.name, tuple(sorted(sample.labels.items()))): sample.value
        for family in text_string_to_metric_families(response["body"]) for sample in family.samples
    }


def value(samples: dict[tuple[str, tuple], float], name: str, **labels: str) -> float:
    return samples.get((name, tuple(sorted(labels.items()))), 0.0)


def test_a_burst_moves_the_answer_counters_the_latency_histogram_and_the_request_count_by_its_size(
    gateway: ProjectGateway, stack, classifier, imagenet_sample
) -> None:
    worker = Worker(stack, classifier)
    heartbeat = worker.heartbeat(interval_s=0.2)  # publishes the worker's metrics as it runs
    heartbeat.start()
    try:
        before = scrape(gateway)
        ids = []
        for photo in imagenet_sample[:BURST]:
            answer = gateway.handle_request(
                "POST", "/v1/images?wait=0", {"content-type": "image/jpeg"}, photo.path.read_bytes()
            )
            assert answer["statusCode"] == 202
            ids.append(json.loads(answer["body"])["id"])
        assert value(scrape(gateway), "iraas_request_queue_messages", state="visible") == BURST
        answered = 0
        while answered < BURST:
            answered += worker.poll_once(wait_s=1).answered
    finally:
        heartbeat.stop()  # publishes once more
    after = scrape(gateway)

    assert value(after, "iraas_images_answered_total") - value(before, "iraas_images_answered_total") == BURST
    count = "iraas_answer_latency_seconds_count"
    assert value(after, count) - value(before, count) == BURST
    assert value(after, "iraas_answer_latency_seconds_bucket", le="+Inf") == value(after, count)
    assert value(after, "iraas_answer_latency_seconds_sum") > value(before, "iraas_answer_latency_seconds_sum")
    requests = ("iraas_http_requests_total", {"route": "/v1/images", "code": "202"})
    assert value(after, requests[0], **requests[1]) - value(before, requests[0], **requests[1]) == BURST
    assert value(after, "iraas_request_queue_messages", state="visible") == 0
    assert ("iraas_workers", (("state", "running"),)) in after
    assert ("iraas_dead_letter_messages", ()) in after


def test_the_key_is_required_where_one_is_set_as_x_api_key_or_a_bearer_token(
    gateway: ProjectGateway, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("IRAAS_API_KEY", KEY)

    def status(headers: dict[str, str]) -> tuple[int, Any]:
        response = gateway.handle_request("GET", "/metrics", headers, None)
        return response["statusCode"], response["body"]

    code, body = status({})
    assert code == 401 and json.loads(body)["error"]["code"] == "unauthorized"
    assert status({"Authorization": "Bearer not-the-key-at-all-000"})[0] == 403
    assert status({"x-api-key": "not-the-key-at-all-000"})[0] == 403
    assert status({"x-api-key": KEY})[0] == 200
    assert status({"Authorization": f"Bearer {KEY}"})[0] == 200


def test_every_metric_the_documented_grafana_dashboard_queries_is_served(gateway: ProjectGateway, stack) -> None:
    dashboard = json.loads((REPO_ROOT / "docs" / "grafana-dashboard.json").read_text())
    queried = {
        re.sub(r"_(bucket|sum|count)$", "", name)
        for panel in dashboard["panels"] for target in panel["targets"]
        for name in re.findall(r"\biraas_[a-z_]+", target["expr"])
    }
    response = gateway.handle_request("GET", "/metrics", {}, None)
    served = {family.name for family in text_string_to_metric_families(response["body"])}  # without _total
    assert queried and {re.sub(r"_total$", "", name) for name in queried} <= served


def test_the_face_functions_videos_and_durations_are_scraped_where_iraas_up_has_them_published(
    gateway: ProjectGateway, stack, monkeypatch: pytest.MonkeyPatch
) -> None:
    s3 = aws.client(stack, "s3")
    bucket = load_face_settings().video_output_bucket
    quiet = load_face_settings()  # IRAAS_FUNCTION_METRICS unset, as on AWS: nothing is published
    function_metrics.record_video(quiet, VideoOutcome("in", "a.mp4", csv_key="a.csv", latency_ms=900))
    assert s3.list_objects_v2(Bucket=bucket, Prefix=function_metrics.PREFIX).get("KeyCount") == 0
    before = scrape(gateway)

    monkeypatch.setenv("IRAAS_FUNCTION_METRICS", "1")
    publishing = load_face_settings()
    function_metrics.record_video(publishing, VideoOutcome("in", "b.mp4", csv_key="b.csv", latency_ms=1500))
    function_metrics.record_video(
        publishing, VideoOutcome("in", "c.mp4", csv_key="c.csv", reason="no_faces", latency_ms=400)
    )
    function_metrics.record_video(publishing, VideoOutcome("in", "notes.txt"))  # no CSV: not a video
    after = scrape(gateway)

    def moved(name: str, **labels: str) -> float:
        return value(after, name, **labels) - value(before, name, **labels)

    assert moved("iraas_videos_processed_total", outcome="ok") == 1
    assert moved("iraas_videos_processed_total", outcome="no_faces") == 1
    assert moved("iraas_face_function_seconds_count") == 2
    assert moved("iraas_face_function_seconds_sum") == pytest.approx(1.9)
