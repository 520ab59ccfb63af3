"""Counts by outcome and a duration histogram that only grow: kept by a process, published as JSON,
summed by a reader (``GET /metrics``: the image workers' answers, the face function's videos).

Durations fall into fixed log-spaced bins, the same everywhere, so that tallies and windows add
up across processes: 24 upper bounds from 5 ms to 120 s (each about 1.55x the last), plus one bin
above 120 s. A value v falls in the first bin whose bound is >= v.
"""

from __future__ import annotations

import bisect
import json
import math
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any, TypeVar

from iraas import aws

_LOW_S, _HIGH_S, _BOUNDS = 0.005, 120.0, 24
LATENCY_BOUNDS_S: tuple[float, ...] = tuple(
    float(f"{_LOW_S * (_HIGH_S / _LOW_S) ** (k / (_BOUNDS - 1)):.4g}") for k in range(_BOUNDS)
)
BINS = len(LATENCY_BOUNDS_S) + 1
_READ_THREADS = 8
T = TypeVar("T")


def latency_bin(latency_s: float) -> int:
    """The histogram bin of a duration: 0 for up to 5 ms, ``BINS - 1`` for over 120 s."""
    return bisect.bisect_left(LATENCY_BOUNDS_S, latency_s)


def bin_range(index: int) -> tuple[float, float]:
    """(lower, upper] of a bin; the overflow bin's upper bound is infinity."""
    lower = LATENCY_BOUNDS_S[index - 1] if index > 0 else 0.0
    upper = LATENCY_BOUNDS_S[index] if index < len(LATENCY_BOUNDS_S) else math.inf
    return lower, upper


@dataclass
class Tally:
    """What a process did since it started: ``counts`` by outcome, and the histogram and sum of the
    durations that are known."""

    counts: dict[str, int] = field(default_factory=dict)
    seconds_sum: float = 0.0
    hist: list[int] = field(default_factory=lambda: [0] * BINS)

    def record(self, outcome: str, seconds: float | None) -> None:
        self.counts[outcome] = self.counts.get(outcome, 0) + 1
        if seconds is not None:
            seconds = max(0.0, seconds)
            self.seconds_sum += seconds
            self.hist[latency_bin(seconds)] += 1

    def add(self, other: Tally) -> None:
        for outcome, count in other.counts.items():
            self.counts[outcome] = self.counts.get(outcome, 0) + count
        self.seconds_sum += other.seconds_sum
        self.hist = [a + b for a, b in zip(self.hist, other.hist, strict=True)]

    def copy(self) -> Tally:
        return Tally(dict(self.counts), self.seconds_sum, list(self.hist))

    def buckets(self) -> list[tuple[str, int]]:
        """The histogram as Prometheus' cumulative ``le`` buckets, ``+Inf`` last."""
        cumulative, out = 0, []
        for index, count in enumerate(self.hist):
            cumulative += count
            upper = bin_range(index)[1]
            out.append(("+Inf" if upper == math.inf else repr(upper), cumulative))
        return out

    def to_dict(self) -> dict[str, Any]:
        return {"counts": dict(self.counts), "seconds_sum": round(self.seconds_sum, 6), "hist": list(self.hist)}

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Tally:
        hist = [int(n) for n in data["hist"]]
        if len(hist) != BINS:
            raise ValueError(f"a histogram of {len(hist)} bins, not {BINS}")
        counts = {str(outcome): int(count) for outcome, count in dict(data["counts"]).items()}
        return cls(counts, float(data["seconds_sum"]), hist)


def sum_tallies(s3: Any, bucket: str, prefix: str, read: Callable[[dict[str, Any]], Tally | None]) -> Tally:
    """The tallies the processes published under ``prefix`` (one JSON object each), summed: a LIST
    and a GET per object, side by side. ``read`` takes a tally out of a parsed object (None: none);
    an object that is gone, or not ours, is skipped."""
    keys = [obj["Key"] for page in s3.get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=prefix)
            for obj in page.get("Contents", []) if obj["Key"].endswith(".json")]

    summed = Tally()
    with ThreadPoolExecutor(max_workers=max(1, min(_READ_THREADS, len(keys))), thread_name_prefix="tallies") as pool:
        for tally in pool.map(lambda key: read_published(s3, bucket, key, read), keys):
            if tally is not None:
                summed.add(tally)
    return summed


def read_published(s3: Any, bucket: str, key: str, read: Callable[[dict[str, Any]], T | None]) -> T | None:
    """``read`` of one published JSON object; None if it is gone (expired meanwhile) or not ours."""
    try:
        return read(json.loads(s3.get_object(Bucket=bucket, Key=key)["Body"].read()))
    except (ValueError, TypeError, KeyError, AttributeError):
        return None  # not ours
    except Exception as exc:
        if aws.is_not_found(exc):
            return None
        raise
