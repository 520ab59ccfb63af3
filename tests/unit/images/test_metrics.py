"""Recent throughput and latency: a worker's rolling window, and the fleet's merge of them.

The window runs on given clocks; the fleet's objects sit in a fake S3 that stamps each PUT with a
chosen LastModified and counts the calls, so staleness and costs are exact.
"""

from __future__ import annotations

import json
from collections import Counter
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import pytest

from iraas.images.metrics import (
    BINS,
    LATENCY_BOUNDS_S,
    METRICS_PREFIX,
    LatencyWindow,
    MetricsPublisher,
    format_metrics,
    latency_bin,
    metrics_key,
    percentile,
    recent_metrics,
)

T0 = 1_800_000_000.0  # a bucket boundary (a multiple of 10 s)


class _Body:
    def __init__(self, data: bytes) -> None:
        self._data = data

    def read(self) -> bytes:
        return self._data


@dataclass
class FakeS3:
    """Objects with the LastModified of the fake clock ``now``; counts calls by name."""

    now: float = T0
    objects: dict[str, tuple[bytes, float]] = field(default_factory=dict)
    calls: Counter = field(default_factory=Counter)

    def put_object(self, Key: str, Body: bytes, **_: Any) -> None:  # noqa: N803 - boto3's names
        self.calls["PutObject"] += 1
        self.objects[Key] = (Body, self.now)

    def get_object(self, Key: str, **_: Any) -> dict:  # noqa: N803
        self.calls["GetObject"] += 1
        return {"Body": _Body(self.objects[Key][0])}

    def get_paginator(self, _name: str) -> FakeS3:
        return self

    def paginate(self, Prefix: str, **_: Any) -> list[dict]:  # noqa: N803
        self.calls["ListObjectsV2"] += 1
        return [{"Contents": [
            {"Key": key, "LastModified": datetime.fromtimestamp(modified, UTC)}
            for key, (_, modified) in sorted(self.objects.items()) if key.startswith(Prefix)
        ]}]


def publish(s3: FakeS3, worker_id: str, window: LatencyWindow, at: float) -> None:
    s3.now = at
    assert MetricsPublisher(s3, "out", worker_id, window).publish_if_changed(now=at)


# ---- the window ----------------------------------------------------------------------------


def test_answers_fall_into_ten_second_buckets_by_when_they_were_sent() -> None:
    window = LatencyWindow()
    window.record(0.2, now=T0)
    window.record(0.4, now=T0 + 9.99)
    window.record(1.5, failed=True, now=T0 + 9.99)
    window.record(None, now=T0 + 10)  # no SentTimestamp: counted, not timed

    first, second = window.buckets(now=T0 + 11)
    assert (first.t, first.answered, first.failed) == (T0, 3, 1)
    assert first.latency_sum_s == pytest.approx(2.1)
    assert first.latency_max_s == 1.5
    assert sum(first.hist) == 3
    assert (second.t, second.answered, sum(second.hist)) == (T0 + 10, 1, 0)


def test_buckets_older_than_ten_minutes_are_dropped() -> None:
    window = LatencyWindow()
    window.record(0.1, now=T0)
    window.record(0.1, now=T0 + 300)
    window.record(0.1, now=T0 + 615)  # T0's bucket ended more than 600 s ago
    assert [b.t for b in window.buckets(now=T0 + 615)] == [T0 + 300, T0 + 610]
    assert window.buckets(now=T0 + 2000) == []


def test_a_negative_latency_from_clock_skew_counts_as_zero() -> None:
    window = LatencyWindow()
    window.record(-0.03, now=T0)
    (bucket,) = window.buckets(now=T0)
    assert bucket.hist[0] == 1 and bucket.latency_max_s == 0.0


def test_the_histogram_has_log_spaced_bins_from_5_ms_to_120_s() -> None:
    assert len(LATENCY_BOUNDS_S) == 24 and BINS == 25
    assert LATENCY_BOUNDS_S[0] == 0.005 and LATENCY_BOUNDS_S[-1] == 120.0
    ratios = [b / a for a, b in zip(LATENCY_BOUNDS_S, LATENCY_BOUNDS_S[1:], strict=False)]
    assert all(1.5 < r < 1.6 for r in ratios)
    assert latency_bin(0.0) == latency_bin(0.005) == 0
    assert latency_bin(0.0051) == 1
    assert latency_bin(120.0) == 23
    assert latency_bin(121.0) == 24


def test_percentiles_of_a_histogram_land_in_the_bin_of_the_exact_value() -> None:
    latencies = [0.01 * 1.2**k for k in range(40)]  # 10 ms .. 12 s
    hist = [0] * BINS
    for value in latencies:
        hist[latency_bin(value)] += 1
    ordered = sorted(latencies)
    for q in (0.5, 0.9, 0.99, 1.0):
        exact = ordered[max(1, -(-int(q * 100) * len(ordered) // 100)) - 1]
        assert latency_bin(percentile(hist, q, max(latencies))) == latency_bin(exact), q
    assert percentile(hist, 1.0, max(latencies)) <= max(latencies)
    assert percentile([0] * BINS, 0.5, 0.0) is None
    overflow = [0] * (BINS - 1) + [2]
    assert percentile(overflow, 0.5, 300.0) == pytest.approx(210.0)  # bounded by the maximum


def test_a_worker_publishes_only_when_it_answered_something_new() -> None:
    s3 = FakeS3()
    window = LatencyWindow()
    publisher = MetricsPublisher(s3, "out", "i-0abc", window)
    assert not publisher.publish_if_changed(now=T0)  # idle since it started: no call at all
    window.record(0.3, now=T0)
    assert publisher.publish_if_changed(now=T0 + 1)
    assert not publisher.publish_if_changed(now=T0 + 2)
    window.record(0.3, now=T0 + 3)
    assert publisher.publish_if_changed(now=T0 + 4)
    assert s3.calls == {"PutObject": 2}
    body = json.loads(s3.objects[metrics_key("i-0abc")][0])
    assert body["worker_id"] == "i-0abc" and body["bucket_s"] == 10
    assert [(b["t"], b["answered"]) for b in body["buckets"]] == [(T0, 2)]


def test_a_worker_id_cannot_steer_the_key_outside_its_prefix() -> None:
    assert metrics_key("../../results/x") == f"{METRICS_PREFIX}.._.._results_x.json"
    assert metrics_key("local-3") == "status/metrics/local-3.json"


# ---- the fleet's view ----------------------------------------------------------------------


def test_percentiles_are_merged_across_workers_from_their_histograms() -> None:
    s3 = FakeS3()
    fast, slow = LatencyWindow(), LatencyWindow()
    for _ in range(60):
        fast.record(0.05, now=T0 + 1)
    for _ in range(40):
        slow.record(2.0, now=T0 + 2)
    slow.record(7.5, failed=True, now=T0 + 3)
    publish(s3, "fast", fast, T0 + 4)
    publish(s3, "slow", slow, T0 + 4)

    metrics = recent_metrics(s3, "out", now=T0 + 15)
    bucket = next(b for b in metrics["series"] if b["t"] == T0)
    assert (bucket["answered"], bucket["failed"]) == (101, 1)
    assert bucket["images_per_s"] == pytest.approx(10.1)
    # Of 101 answers, rank 51 is the 50 ms group and rank 91 the 2 s group: each lands in its bin.
    assert latency_bin(bucket["latency_p50_s"]) == latency_bin(0.05)
    assert latency_bin(bucket["latency_p90_s"]) == latency_bin(2.0)
    assert bucket["latency_max_s"] == 7.5
    assert bucket["latency_mean_s"] == pytest.approx((60 * 0.05 + 40 * 2.0 + 7.5) / 101, abs=1e-4)
    assert metrics["workers_reporting"] == 2
    assert s3.calls == {"PutObject": 2, "ListObjectsV2": 1, "GetObject": 2}


def test_the_series_has_every_bucket_of_the_window_and_the_last_is_in_progress() -> None:
    s3 = FakeS3()
    window = LatencyWindow()
    for k in range(5):
        window.record(0.2, now=T0 + 20 + k)
    window.record(0.2, now=T0 + 304)
    window.record(0.2, now=T0 + 305)
    publish(s3, "w", window, T0 + 305)

    metrics = recent_metrics(s3, "out", now=T0 + 305)
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


def test_an_object_not_modified_within_the_window_is_not_even_read() -> None:
    s3 = FakeS3()
    old, fresh = LatencyWindow(), LatencyWindow()
    old.record(0.1, now=T0 + 1000)  # claims a recent bucket, but its object is old
    fresh.record(0.1, now=T0 + 1000)
    publish(s3, "old", old, T0)
    publish(s3, "fresh", fresh, T0 + 1000)
    s3.objects[f"{METRICS_PREFIX}notes.txt"] = (b"not ours", T0 + 1000)
    s3.objects[f"{METRICS_PREFIX}broken.json"] = (b"{", T0 + 1000)
    s3.objects[f"{METRICS_PREFIX}other.json"] = (json.dumps({"v": 99}).encode(), T0 + 1000)
    s3.calls.clear()

    metrics = recent_metrics(s3, "out", now=T0 + 1001)
    assert metrics["last_minute"]["answered"] == 1
    assert metrics["workers_reporting"] == 1
    assert s3.calls == {"ListObjectsV2": 1, "GetObject": 3}  # fresh, broken and other: never old


def test_buckets_from_before_the_window_are_left_out() -> None:
    s3 = FakeS3()
    window = LatencyWindow()
    window.record(0.1, now=T0)
    window.record(0.1, now=T0 + 500)
    publish(s3, "w", window, T0 + 500)
    metrics = recent_metrics(s3, "out", now=T0 + 650)
    assert sum(b["answered"] for b in metrics["series"]) == 1
    assert metrics["last_minute"]["answered"] == 0
    assert metrics["last_minute"]["latency_p50_s"] is None


def test_nothing_published_yet_reads_as_zeros() -> None:
    metrics = recent_metrics(FakeS3(), "out", now=T0)
    assert metrics["workers_reporting"] == 0
    assert len(metrics["series"]) == 60
    assert metrics["last_minute"]["answered"] == 0
    assert format_metrics(metrics).startswith("last minute: 0 answered (0 failed), 0.00 images/s")


def test_the_text_report_has_the_last_minute_and_each_busy_bucket() -> None:
    s3 = FakeS3()
    window = LatencyWindow()
    window.record(0.25, now=T0 + 1)
    window.record(0.5, failed=True, now=T0 + 2)
    publish(s3, "w", window, T0 + 3)
    text = format_metrics(recent_metrics(s3, "out", now=T0 + 5))
    first, *rest = text.splitlines()
    assert "2 answered (1 failed)" in first and "1 workers reporting" in first and "max 500 ms" in first
    assert len(rest) == 1 and "2 answered" in rest[0]
