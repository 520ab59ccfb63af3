"""iraas/images/metrics.py: a worker's rolling window of recent throughput and latency, on given
clocks, and the histogram behind the fleet's percentiles.

(Publishing the window to S3 and merging the fleet's windows on read, with each call counted, are
in tests/integration/images/test_metrics.py, on moto.)"""

from __future__ import annotations

import pytest

from iraas.images.metrics import (
    BINS,
    LATENCY_BOUNDS_S,
    METRICS_PREFIX,
    LatencyWindow,
    latency_bin,
    metrics_key,
    percentile,
)
from iraas.tallies import Tally

T0 = 1_800_000_000.0  # a bucket boundary (a multiple of 10 s)


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


def test_totals_count_every_answer_since_the_start_by_outcome_and_never_expire() -> None:
    window = LatencyWindow()
    window.record(0.2, now=T0)
    window.record(None, now=T0 + 1)  # answered, not timed
    window.record(0.5, failed=True, now=T0 + 2, reason="undecodable")
    window.record(0.7, failed=True, now=T0 + 3, reason="undecodable")
    window.record(None, failed=True, now=T0 + 4000, reason="input_missing")  # long after the window
    totals = window.totals()
    assert window.buckets(now=T0 + 4000)[0].t == T0 + 4000  # the window forgot the first four...
    assert totals.counts == {"done": 2, "undecodable": 2, "input_missing": 1}  # ...the totals did not
    assert sum(totals.hist) == 3 and totals.seconds_sum == pytest.approx(1.4)
    assert Tally.from_dict(totals.to_dict()) == totals


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


def test_a_worker_id_cannot_steer_the_key_outside_its_prefix() -> None:
    assert metrics_key("../../results/x") == f"{METRICS_PREFIX}.._.._results_x.json"
    assert metrics_key("local-3") == "status/metrics/local-3.json"
