"""iraas/images/metrics.py against moto: what a worker publishes to S3, and the fleet's merge on read.

- A worker's window is PUT only when it answered something new; the fleet's view merges the
  windows' histograms into percentiles, has every bucket of the window (the last in progress), and
  reads no object not modified within the window. The windows run on given clocks; S3 stamps each
  object with the real time of its PUT, so each test's clock is set to the time it runs.
- Real workers answer, ``ImageService.metrics`` reports: two workers answer requests and stop (as
  scale-in stops them); their heartbeats go, their metrics stay and are counted. Each metrics PUT
  happens on the heartbeat tick when something changed, never per image, and an idle worker makes
  none.

Every call is counted with botocore's event hooks. (The window on its own: tests/unit/images/test_metrics.py.)
"""

from __future__ import annotations

import json
import time
from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import pytest

from iraas import aws, queues
from iraas.images.jobs import ImageRequest, input_key, new_id
from iraas.images.metrics import (
    METRICS_PREFIX,
    LatencyWindow,
    MetricsPublisher,
    fleet_metrics_line,
    format_metrics,
    latency_bin,
    metrics_key,
    recent_metrics,
)
from iraas.images.service import ImageService
from iraas.images.settings import load_image_settings
from iraas.images.worker import Worker
from iraas.scaling.status import FleetStatus, S3StatusStore, heartbeat_key

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


@pytest.mark.slow
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


@pytest.mark.slow
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


@pytest.mark.slow
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


# ---- a worker's window in S3, and the fleet's merge of them, on given clocks -------------------


@pytest.fixture
def s3(stack) -> Any:
    return aws.client(stack, "s3")


@pytest.fixture
def bucket(stack) -> str:
    return stack.image_output_bucket


def counted(client: Any) -> Counter[str]:
    """Every call the client makes from now on, by operation."""
    calls: Counter[str] = Counter()
    client.meta.events.register("before-call.s3", lambda event_name, **_: calls.update([event_name.rsplit(".", 1)[1]]))
    return calls


def clock_at(offset: float = 0) -> float:
    """T0, a bucket boundary (a multiple of 10 s) with T0 + ``offset`` about now: an object's
    LastModified is when S3 took it, so a test that publishes at T0 + ``offset`` publishes now."""
    return float(int((time.time() - offset) // 10 * 10))


def publish(s3: Any, bucket: str, worker_id: str, window: LatencyWindow, at: float) -> None:
    assert MetricsPublisher(s3, bucket, worker_id, window).publish_if_changed(now=at)


def put(s3: Any, bucket: str, key: str, body: bytes) -> None:
    s3.put_object(Bucket=bucket, Key=key, Body=body)


def test_a_worker_publishes_only_when_it_answered_something_new(s3, bucket) -> None:
    T0 = clock_at()
    calls = counted(s3)
    window = LatencyWindow()
    publisher = MetricsPublisher(s3, bucket, "i-0abc", window)
    assert not publisher.publish_if_changed(now=T0)  # idle since it started: no call at all
    window.record(0.3, now=T0)
    assert publisher.publish_if_changed(now=T0 + 1)
    assert not publisher.publish_if_changed(now=T0 + 2)
    window.record(0.3, now=T0 + 3)
    assert publisher.publish_if_changed(now=T0 + 4)
    assert calls == {"PutObject": 2}
    body = json.loads(s3.get_object(Bucket=bucket, Key=metrics_key("i-0abc"))["Body"].read())
    assert body["worker_id"] == "i-0abc" and body["bucket_s"] == 10
    assert [(b["t"], b["answered"]) for b in body["buckets"]] == [(T0, 2)]


def test_percentiles_are_merged_across_workers_from_their_histograms(s3, bucket) -> None:
    T0 = clock_at()
    calls = counted(s3)
    fast, slow = LatencyWindow(), LatencyWindow()
    for _ in range(60):
        fast.record(0.05, now=T0 + 1)
    for _ in range(40):
        slow.record(2.0, now=T0 + 2)
    slow.record(7.5, failed=True, now=T0 + 3)
    publish(s3, bucket, "fast", fast, T0 + 4)
    publish(s3, bucket, "slow", slow, T0 + 4)

    metrics = recent_metrics(s3, bucket, now=T0 + 15)
    series_bucket = next(b for b in metrics["series"] if b["t"] == T0)
    assert (series_bucket["answered"], series_bucket["failed"]) == (101, 1)
    assert series_bucket["images_per_s"] == pytest.approx(10.1)
    # Of 101 answers, rank 51 is the 50 ms group and rank 91 the 2 s group: each lands in its bin.
    assert latency_bin(series_bucket["latency_p50_s"]) == latency_bin(0.05)
    assert latency_bin(series_bucket["latency_p90_s"]) == latency_bin(2.0)
    assert series_bucket["latency_max_s"] == 7.5
    assert series_bucket["latency_mean_s"] == pytest.approx((60 * 0.05 + 40 * 2.0 + 7.5) / 101, abs=1e-4)
    assert metrics["workers_reporting"] == 2
    assert calls == {"PutObject": 2, "ListObjectsV2": 1, "GetObject": 2}


def test_the_series_has_every_bucket_of_the_window_and_the_last_is_in_progress(s3, bucket) -> None:
    T0 = clock_at()
    window = LatencyWindow()
    for k in range(5):
        window.record(0.2, now=T0 + 20 + k)
    window.record(0.2, now=T0 + 304)
    window.record(0.2, now=T0 + 305)
    publish(s3, bucket, "w", window, T0 + 305)

    metrics = recent_metrics(s3, bucket, now=T0 + 305)
    series = metrics["series"]
    assert len(series) == 60 and metrics["bucket_s"] == 10 and metrics["window_s"] == 600
    assert [b["t"] for b in series] == [T0 + 300 - 590 + 10 * i for i in range(60)]
    assert sum(b["answered"] for b in series) == 7
    empty = next(b for b in series if b["t"] == T0 + 10)
    assert empty == {"t": T0 + 10, "answered": 0, "failed": 0, "images_per_s": 0.0, "latency_mean_s": None,
                     "latency_p50_s": None, "latency_p90_s": None, "latency_max_s": None}
    assert next(b for b in series if b["t"] == T0 + 20)["images_per_s"] == 0.5  # 5 in 10 s
    assert series[-1]["t"] == T0 + 300
    assert series[-1]["images_per_s"] == 0.4  # 2 in the 5 s it has run
    # The last minute: the buckets that began within it (T0+250 .. T0+300), 55 s of them.
    assert metrics["last_minute"]["answered"] == 2
    assert metrics["last_minute"]["images_per_s"] == pytest.approx(2 / 55, abs=1e-3)
    assert latency_bin(metrics["last_minute"]["latency_p50_s"]) == latency_bin(0.2)


def test_an_object_not_modified_within_the_window_is_not_even_read(s3, bucket) -> None:
    soon = time.time() + 600  # when the test reads: the window will begin after the old object's PUT
    old, fresh = LatencyWindow(), LatencyWindow()
    old.record(0.1, now=soon)  # claims a recent bucket, but its object is old
    fresh.record(0.1, now=soon)
    publish(s3, bucket, "old", old, soon)
    time.sleep(1.05 - time.time() % 1)  # LastModified has whole seconds: the fresh one's is the next
    publish(s3, bucket, "fresh", fresh, soon)
    put(s3, bucket, f"{METRICS_PREFIX}notes.txt", b"not ours")
    put(s3, bucket, f"{METRICS_PREFIX}broken.json", b"{")
    put(s3, bucket, f"{METRICS_PREFIX}other.json", json.dumps({"v": 99}).encode())
    # The window begins at the fresh object's LastModified: the old one's is a second before.
    now = s3.head_object(Bucket=bucket, Key=metrics_key("fresh"))["LastModified"].timestamp() + 600
    calls = counted(s3)

    metrics = recent_metrics(s3, bucket, now=now)
    assert metrics["last_minute"]["answered"] == 1
    assert metrics["workers_reporting"] == 1
    assert calls == {"ListObjectsV2": 1, "GetObject": 3}  # fresh, broken and other: never old


def test_buckets_from_before_the_window_are_left_out(s3, bucket) -> None:
    T0 = clock_at(500)  # published at T0 + 500
    window = LatencyWindow()
    window.record(0.1, now=T0)
    window.record(0.1, now=T0 + 500)
    publish(s3, bucket, "w", window, T0 + 500)
    metrics = recent_metrics(s3, bucket, now=T0 + 650)
    assert sum(b["answered"] for b in metrics["series"]) == 1
    assert metrics["last_minute"]["answered"] == 0
    assert metrics["last_minute"]["latency_p50_s"] is None


def test_nothing_published_yet_reads_as_zeros(s3, bucket) -> None:
    metrics = recent_metrics(s3, bucket, now=clock_at())
    assert metrics["workers_reporting"] == 0
    assert len(metrics["series"]) == 60
    assert metrics["last_minute"]["answered"] == 0
    assert format_metrics(metrics).startswith("last minute: 0 answered (0 failed), 0.00 images/s")


def test_the_text_report_has_the_last_minute_and_each_busy_bucket(s3, bucket) -> None:
    T0 = clock_at()
    window = LatencyWindow()
    window.record(0.25, now=T0 + 1)
    window.record(0.5, failed=True, now=T0 + 2)
    publish(s3, bucket, "w", window, T0 + 3)
    text = format_metrics(recent_metrics(s3, bucket, now=T0 + 5))
    first, *rest = text.splitlines()
    assert "2 answered (1 failed)" in first and "1 workers reporting" in first and "max 500 ms" in first
    assert len(rest) == 1 and "2 answered" in rest[0]


def test_the_scalers_cloudwatch_line_has_the_fleets_minute_as_embedded_metrics(s3, bucket) -> None:
    T0 = clock_at(offset=5)
    window = LatencyWindow()
    for latency in (0.1, 0.1, 0.2, 2.0):
        window.record(latency, now=T0)
    window.record(0.3, failed=True, now=T0, reason="undecodable")
    publish(s3, bucket, "i-0abc", window, at=T0)
    S3StatusStore(s3, bucket).publish(FleetStatus(running=2, desired=3, fleet="ec2", max=19, capped_by="setting"))

    line = json.loads(fleet_metrics_line(s3, bucket, "my-stack", now=T0 + 5))

    [directive] = line["_aws"]["CloudWatchMetrics"]
    assert directive["Namespace"] == "IRaaS" and directive["Dimensions"] == [["Stack"]] and line["Stack"] == "my-stack"
    assert {m["Name"]: m["Unit"] for m in directive["Metrics"]} == {
        "WorkersRunning": "Count", "WorkersDesired": "Count", "ImagesAnswered": "Count", "ImagesFailed": "Count",
        "AnswerLatencyP50": "Seconds", "AnswerLatencyP90": "Seconds",
    }
    assert (line["WorkersRunning"], line["WorkersDesired"], line["ImagesAnswered"], line["ImagesFailed"]) == (2, 3, 5, 1)
    assert latency_bin(line["AnswerLatencyP50"]) == latency_bin(0.2) and latency_bin(line["AnswerLatencyP90"]) == latency_bin(2.0)
    assert line["_aws"]["Timestamp"] == int((T0 + 5) * 1000)
