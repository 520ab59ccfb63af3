"""The fleet's recent metrics against moto: real workers answer, ``ImageService.metrics`` reports.

Two workers answer requests and stop (as scale-in stops them); their heartbeats go, their metrics
stay and are counted. Each metrics PUT is counted with botocore's event hooks: it happens on the
heartbeat tick when something changed, never per image, and an idle worker makes none.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from contextlib import contextmanager

import pytest

from iraas import aws, queues
from iraas.images.jobs import ImageRequest, input_key, new_id
from iraas.images.metrics import METRICS_PREFIX, metrics_key
from iraas.images.service import ImageService
from iraas.images.settings import load_image_settings
from iraas.images.worker import Worker
from iraas.scaling.status import heartbeat_key

pytestmark = pytest.mark.slow

TICK_S = 0.1


@pytest.fixture
def settings(stack, monkeypatch):
    # No waiting in tests: short polls and immediate retries.
    monkeypatch.setenv("IRAAS_WORKER_LONG_POLL_S", "0")
    monkeypatch.setenv("IRAAS_WORKER_RETRY_DELAY_S", "0")
    return load_image_settings()


def enqueue(settings, data: bytes, name: str) -> ImageRequest:
    """What the web tier does: store the image, queue a pointer to it."""
    request_id = new_id()
    request = ImageRequest(request_id, name, settings.image_input_bucket, input_key("anonymous", request_id, name))
    aws.client(settings, "s3").put_object(Bucket=request.bucket, Key=request.key, Body=data)
    aws.client(settings, "sqs").send_message(QueueUrl=settings.request_queue_url, MessageBody=request.to_message())
    return request


def drain(settings, worker: Worker, rounds: int = 20) -> None:
    sqs = aws.client(settings, "sqs")
    for _ in range(rounds):
        worker.poll_once(wait_s=0)
        if not queues.queue_depth(sqs, settings.request_queue_url).queued:
            return
    raise AssertionError("the request queue did not drain")


@contextmanager
def metrics_calls(settings) -> Iterator[dict[str, int]]:
    """Counts PutObject and GetObject calls on metrics objects (by their API parameters)."""
    counts = {"PutObject": 0, "GetObject": 0}

    def count(event_name: str, params: dict, **_: object) -> None:
        if params.get("Key", "").startswith(METRICS_PREFIX):
            counts[event_name.rsplit(".", 1)[-1]] += 1

    events = aws.client(settings, "s3").meta.events
    for name in counts:
        events.register(f"before-parameter-build.s3.{name}", count)
    try:
        yield counts
    finally:
        for name in counts:
            events.unregister(f"before-parameter-build.s3.{name}", count)


def exists(settings, key: str) -> bool:
    try:
        aws.client(settings, "s3").head_object(Bucket=settings.image_output_bucket, Key=key)
    except Exception as exc:
        if aws.is_not_found(exc):
            return False
        raise
    return True


def test_the_metrics_count_every_answer_of_workers_that_have_since_stopped(settings, classifier, imagenet_sample):
    photos = imagenet_sample[:8]
    first, second = Worker(settings, classifier, worker_id="metrics-a"), Worker(settings, classifier, worker_id="metrics-b")

    with metrics_calls(settings) as calls:
        beat = first.heartbeat(TICK_S)
        beat.start()
        for p in photos[:5]:
            enqueue(settings, p.path.read_bytes(), p.path.name)
        drain(settings, first)
        time.sleep(4 * TICK_S)  # a tick publishes what it answered
        published = calls["PutObject"]
        time.sleep(4 * TICK_S)  # idle ticks: nothing new, no call
        assert calls["PutObject"] == published
        beat.stop()  # scale-in: nothing new since the last publish either
        assert 1 <= published == calls["PutObject"]

        # The second worker's heartbeat thread never ticks: stopping it publishes its last answers.
        for p in photos[5:]:
            enqueue(settings, p.path.read_bytes(), p.path.name)
        enqueue(settings, b"\xff\xd8\xff\xe0 not really a jpeg", "broken.jpg")  # fails 3 times, then answered
        beat = second.heartbeat(TICK_S)
        drain(settings, second)
        beat.stop()
        assert calls["PutObject"] == published + 1

    for worker_id in ("metrics-a", "metrics-b"):
        assert not exists(settings, heartbeat_key(worker_id))  # gone with the worker
        assert exists(settings, metrics_key(worker_id))  # kept, so the burst's history survives

    metrics = ImageService(settings).metrics()
    assert metrics["workers_reporting"] == 2
    minute = metrics["last_minute"]
    assert (minute["answered"], minute["failed"]) == (9, 1)
    assert sum(b["answered"] for b in metrics["series"]) == 9
    assert 0 < minute["latency_p50_s"] <= minute["latency_p90_s"] <= minute["latency_max_s"] < 60
    assert minute["images_per_s"] > 0


def test_metrics_older_than_the_window_are_ignored_without_being_read(settings, classifier, photo):
    worker = Worker(settings, classifier, worker_id="metrics-old")
    beat = worker.heartbeat(TICK_S)
    enqueue(settings, photo.path.read_bytes(), photo.path.name)
    drain(settings, worker)
    beat.stop()
    service = ImageService(settings)
    with metrics_calls(settings) as calls:
        assert service.metrics()["last_minute"]["answered"] == 1
    assert calls["GetObject"] == 1

    with metrics_calls(settings) as calls:
        later = service.metrics(now=time.time() + 601 + 2)  # LastModified has whole seconds
    assert later["workers_reporting"] == 0
    assert sum(b["answered"] for b in later["series"]) == 0
    assert calls["GetObject"] == 0  # skipped on the listing's LastModified


def test_an_idle_worker_publishes_no_metrics(settings, classifier):
    worker = Worker(settings, classifier, worker_id="metrics-idle")
    with metrics_calls(settings) as calls:
        beat = worker.heartbeat(TICK_S)
        beat.start()
        worker.poll_once(wait_s=0)
        time.sleep(3 * TICK_S)
        beat.stop()
    assert calls["PutObject"] == 0
    assert not exists(settings, metrics_key("metrics-idle"))
    assert ImageService(settings).metrics()["workers_reporting"] == 0


def test_the_output_bucket_expires_metrics_after_a_day(settings):
    rules = aws.client(settings, "s3").get_bucket_lifecycle_configuration(Bucket=settings.image_output_bucket)["Rules"]
    expiry = {r["Filter"].get("Prefix"): r["Expiration"]["Days"] for r in rules}
    assert expiry[METRICS_PREFIX] == 1
