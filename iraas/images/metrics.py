"""Recent throughput and latency: a rolling window per worker, merged across the fleet on read.

Each worker counts, in fixed 10 s time buckets over the last 10 minutes, the requests it answered
(a result stored and sent), how many of those were failures, and the latency of each answer: from
the request's SQS ``SentTimestamp`` to the moment its reply and announcement went out. Latencies go
into a small fixed histogram (the same log-spaced bins everywhere), so percentiles can be merged
across workers: an average of per-worker percentiles would not be a percentile.

The worker publishes its window as one object, ``status/metrics/<worker id>.json`` in the output
bucket, from its heartbeat thread and only when something changed since the last publish: an idle
worker costs nothing, a busy one at most one PUT per heartbeat tick (never one per image). Unlike
the heartbeat the object is kept when the worker stops, so a burst's history survives scale-in;
readers skip objects not modified within the window (LastModified, from the LIST, without a GET),
and a lifecycle rule in template.yaml expires them after a day.

``recent_metrics`` is what ``GET /v1/metrics`` and ``iraas status`` show (``ImageService.metrics``).
"""

from __future__ import annotations

import json
import math
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any

from iraas.names import safe_segment
from iraas.scaling.status import S3StatusStore
from iraas.tallies import BINS, LATENCY_BOUNDS_S, Tally, bin_range, latency_bin, read_published, sum_tallies

METRICS_PREFIX = "status/metrics/"  # in the output bucket
SCHEMA_VERSION = 1
BUCKET_S = 10
WINDOW_S = 600
LAST_MINUTE_S = 60
_READ_THREADS = 8
DONE = "done"  # the outcome of an image classified; a failed one's is its error code


def metrics_key(worker_id: str) -> str:
    """Where a worker publishes its window (an EC2 instance id, or ``local-3``)."""
    return f"{METRICS_PREFIX}{safe_segment(worker_id)}.json"


@dataclass
class TimeBucket:
    """What was answered in ``[t, t + bucket_s)``; ``sum(hist)`` answers had a known latency."""

    t: int
    answered: int = 0
    failed: int = 0
    latency_sum_s: float = 0.0
    latency_max_s: float = 0.0
    hist: list[int] = field(default_factory=lambda: [0] * BINS)

    def add(self, other: TimeBucket) -> None:
        self.answered += other.answered
        self.failed += other.failed
        self.latency_sum_s += other.latency_sum_s
        self.latency_max_s = max(self.latency_max_s, other.latency_max_s)
        self.hist = [a + b for a, b in zip(self.hist, other.hist, strict=True)]

    def to_dict(self) -> dict[str, Any]:
        return {"t": self.t, "answered": self.answered, "failed": self.failed,
                "latency_sum_s": round(self.latency_sum_s, 6), "latency_max_s": round(self.latency_max_s, 6),
                "hist": list(self.hist)}

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> TimeBucket:
        hist = [int(n) for n in data["hist"]]
        if len(hist) != BINS:
            raise ValueError(f"a histogram of {len(hist)} bins, not {BINS}")
        return cls(t=int(data["t"]), answered=int(data["answered"]), failed=int(data["failed"]),
                   latency_sum_s=float(data["latency_sum_s"]), latency_max_s=float(data["latency_max_s"]), hist=hist)


class LatencyWindow:
    """One worker's answers in fixed time buckets over the last ``window_s`` seconds.

    Thread-safe: the worker's loop records, its heartbeat thread exports. The exported version
    changes with every record, so the publisher can tell there is something new without comparing.
    """

    def __init__(self, bucket_s: int = BUCKET_S, window_s: int = WINDOW_S) -> None:
        if bucket_s <= 0 or window_s < bucket_s:
            raise ValueError("need 0 < bucket_s <= window_s")
        self.bucket_s, self.window_s = bucket_s, window_s
        self._buckets: dict[int, TimeBucket] = {}
        self._totals = Tally()  # since the start: counts by outcome ("done" or the error code)
        self._version = 0
        self._lock = threading.Lock()

    def record(
        self, latency_s: float | None, failed: bool = False, now: float | None = None, reason: str = "unknown"
    ) -> None:
        """One answer, sent at ``now`` (wall clock); ``latency_s`` None when it is not known; a failed
        one with its ``reason`` (its error code)."""
        now = time.time() if now is None else now
        start = int(now // self.bucket_s) * self.bucket_s
        with self._lock:
            bucket = self._buckets.get(start)
            if bucket is None:
                bucket = self._buckets[start] = TimeBucket(start)
                self._expire(now)
            bucket.answered += 1
            bucket.failed += failed
            self._totals.record(reason if failed else DONE, latency_s)
            if latency_s is not None:
                latency_s = max(0.0, latency_s)  # clocks of SQS and this host may differ a little
                bucket.latency_sum_s += latency_s
                bucket.latency_max_s = max(bucket.latency_max_s, latency_s)
                bucket.hist[latency_bin(latency_s)] += 1
            self._version += 1

    def totals(self) -> Tally:
        """A copy of what this worker answered since it started."""
        with self._lock:
            return self._totals.copy()

    def buckets(self, now: float | None = None) -> list[TimeBucket]:
        """Copies of the buckets still in the window, oldest first."""
        return self.export(now)[1]

    def export(self, now: float | None = None) -> tuple[int, list[TimeBucket]]:
        """(version, the buckets in the window), read together."""
        now = time.time() if now is None else now
        with self._lock:
            self._expire(now)
            copies = [TimeBucket(b.t, b.answered, b.failed, b.latency_sum_s, b.latency_max_s, list(b.hist))
                      for _, b in sorted(self._buckets.items())]
            return self._version, copies

    def _expire(self, now: float) -> None:
        oldest = now - self.window_s - self.bucket_s  # a bucket that ended before the window began
        for start in [s for s in self._buckets if s < oldest]:
            del self._buckets[start]


class MetricsPublisher:
    """Publishes a worker's window when it changed since the last publish (idle: no call at all).

    Called from the worker's heartbeat thread on each tick, and once more as the worker stops.
    """

    def __init__(self, s3: Any, bucket: str, worker_id: str, window: LatencyWindow) -> None:
        self._s3, self._bucket, self._id, self._window = s3, bucket, worker_id, window
        self._published = 0  # the window's version last published; 0: nothing recorded yet

    def publish_if_changed(self, now: float | None = None) -> bool:
        """PUT the window if it has new answers; True if it did. A failed PUT is retried next tick."""
        now = time.time() if now is None else now
        version, buckets = self._window.export(now)
        if version == self._published:
            return False
        body = {"v": SCHEMA_VERSION, "worker_id": self._id, "updated_at": now, "bucket_s": self._window.bucket_s,
                "latency_bounds_s": list(LATENCY_BOUNDS_S), "buckets": [b.to_dict() for b in buckets],
                "totals": self._window.totals().to_dict()}
        self._s3.put_object(Bucket=self._bucket, Key=metrics_key(self._id),
                            Body=json.dumps(body, separators=(",", ":")).encode(), ContentType="application/json")
        self._published = version
        return True


# ---- reading: the fleet's recent metrics ---------------------------------------------------


def percentile(hist: list[int], q: float, max_s: float) -> float | None:
    """The ``q`` quantile (0 < q <= 1) of a merged histogram, None if it is empty.

    Approximate: the nearest-rank bin is exact, the value inside it is interpolated linearly and
    never above the largest latency seen (``max_s``), so it always lies in the right bin.
    """
    total = sum(hist)
    if total == 0:
        return None
    rank = max(1, math.ceil(q * total))
    below = 0
    for index, count in enumerate(hist):
        if count and below + count >= rank:
            lower, upper = bin_range(index)
            upper = min(upper, max(max_s, lower))  # the overflow bin is bounded by the maximum
            return min(upper, lower + (rank - below) / count * (upper - lower))
        below += count
    return max_s  # not reached: the ranks add up to total


def _stats(bucket: TimeBucket, seconds: float) -> dict[str, Any]:
    timed = sum(bucket.hist)

    def rounded(value: float | None) -> float | None:
        return None if value is None else round(value, 4)

    return {
        "answered": bucket.answered,
        "failed": bucket.failed,
        "images_per_s": round(bucket.answered / seconds, 3),
        "latency_mean_s": rounded(bucket.latency_sum_s / timed if timed else None),
        "latency_p50_s": rounded(percentile(bucket.hist, 0.5, bucket.latency_max_s)),
        "latency_p90_s": rounded(percentile(bucket.hist, 0.9, bucket.latency_max_s)),
        "latency_max_s": rounded(bucket.latency_max_s if timed else None),
    }


def _read(s3: Any, bucket: str, key: str) -> list[TimeBucket] | None:
    """One worker's buckets; None if the object is gone or is not ours."""

    def buckets(data: dict[str, Any]) -> list[TimeBucket] | None:
        if data.get("v") != SCHEMA_VERSION or data.get("latency_bounds_s") != list(LATENCY_BOUNDS_S):
            return None  # another version's bins cannot be merged with these
        return [TimeBucket.from_dict(b) for b in data["buckets"]]

    return read_published(s3, bucket, key, buckets)


def fleet_totals(s3: Any, bucket: str) -> Tally:
    """What every worker that published (in the last day: the objects' lifecycle) answered since it
    started, summed, by outcome (``done`` or the error code): one LIST and a GET per worker, never a
    call per image. A worker's totals stay after it stops, so the sum only grows, until a stopped
    worker's object expires."""

    def totals(data: dict[str, Any]) -> Tally | None:
        if data.get("v") != SCHEMA_VERSION or data.get("latency_bounds_s") != list(LATENCY_BOUNDS_S):
            return None  # another version's bins cannot be added to these
        return Tally.from_dict(data["totals"]) if "totals" in data else None

    return sum_tallies(s3, bucket, METRICS_PREFIX, totals)


def recent_metrics(s3: Any, bucket: str, now: float, window_s: int = WINDOW_S, bucket_s: int = BUCKET_S) -> dict[str, Any]:
    """The fleet's throughput and latency over the last ``window_s`` seconds, by time bucket.

    One LIST of ``status/metrics/`` and one GET per worker that published within the window (in
    parallel). ``series`` has every bucket of the window, oldest first, zeros where nothing was
    answered (a chart needs no gap filling); the last one is still in progress, so its rate is over
    its elapsed seconds. ``last_minute`` sums the buckets that began in the last 60 s, its rate over
    the time they cover. Latencies are in seconds, null where nothing was answered; percentiles
    come from the merged histograms (right to the bin; bins are 1.55x wide), mean and max are exact.
    """
    if bucket_s <= 0 or window_s < bucket_s:
        raise ValueError("need 0 < bucket_s <= window_s")
    keys = []
    for page in s3.get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=METRICS_PREFIX):
        for obj in page.get("Contents", []):
            # Not modified within the window: everything in it is older than the window too.
            if obj["Key"].endswith(".json") and obj["LastModified"].timestamp() >= now - window_s:
                keys.append(obj["Key"])
    if len(keys) > 1:
        with ThreadPoolExecutor(max_workers=min(_READ_THREADS, len(keys)), thread_name_prefix="metrics") as pool:
            windows = list(pool.map(lambda key: _read(s3, bucket, key), keys))
    else:
        windows = [_read(s3, bucket, key) for key in keys]

    current = int(now // bucket_s) * bucket_s
    starts = [current - i * bucket_s for i in reversed(range(window_s // bucket_s))]
    merged = {t: TimeBucket(t) for t in starts}
    reporting = 0
    for buckets in windows:
        contributed = False
        for b in buckets or []:
            t = int(b.t // bucket_s) * bucket_s
            if t < starts[0]:
                continue
            # A worker whose clock runs a little ahead still counts, in the bucket in progress.
            merged[min(t, current)].add(b)
            contributed = True
        reporting += contributed

    series = [{"t": t, **_stats(merged[t], bucket_s if t < current else max(now - t, 1.0))} for t in starts]
    first = min(current, math.ceil((now - LAST_MINUTE_S) / bucket_s) * bucket_s)
    minute = TimeBucket(first)
    for t in starts:
        if t >= first:
            minute.add(merged[t])
    last_minute = _stats(minute, max(now - first, 1.0))
    return {"now": round(now, 3), "bucket_s": bucket_s, "window_s": window_s, "series": series,
            "last_minute": last_minute, "workers_reporting": reporting}


def format_metrics(metrics: dict[str, Any]) -> str:
    """``recent_metrics`` as a few lines of text, for ``iraas status``: the last minute, then one
    line per bucket that answered something."""

    def ms(value: float | None) -> str:
        return "-" if value is None else f"{value * 1000:.0f} ms"

    m = metrics["last_minute"]
    lines = [
        f"last minute: {m['answered']} answered ({m['failed']} failed), {m['images_per_s']:.2f} images/s, "
        f"latency p50 {ms(m['latency_p50_s'])}, p90 {ms(m['latency_p90_s'])}, max {ms(m['latency_max_s'])}; "
        f"{metrics['workers_reporting']} workers reporting over the last {metrics['window_s'] // 60} min"
    ]
    for b in metrics["series"]:
        if b["answered"]:
            stamp = time.strftime("%H:%M:%S", time.localtime(b["t"]))
            lines.append(f"  {stamp}  {b['answered']:5d} answered  {b['failed']:3d} failed  "
                         f"{b['images_per_s']:7.2f}/s  p50 {ms(b['latency_p50_s'])}  p90 {ms(b['latency_p90_s'])}  "
                         f"max {ms(b['latency_max_s'])}")
    return "\n".join(lines)


# ---- CloudWatch: the fleet's minute as an embedded-metric-format line -----------------------

CLOUDWATCH_NAMESPACE = "IRaaS"


def fleet_metrics_line(s3: Any, bucket: str, stack: str, now: float | None = None) -> str:
    """The fleet's last minute as one CloudWatch embedded-metric-format (EMF) log line, dimension
    ``Stack``: workers running and desired (the scaler's published fleet), images answered and failed,
    and the answer latency's p50 and p90 (left out when nothing was answered). The scaler prints it
    once per run on Lambda, where CloudWatch Logs turns it into metrics for the stack's dashboard:
    the workers on EC2 ship no logs, and this costs a LIST, a GET per recent worker and one GET."""
    now = time.time() if now is None else now
    minute = recent_metrics(s3, bucket, now)["last_minute"]
    fleet = S3StatusStore(s3, bucket).fleet()
    values: dict[str, tuple[float, str]] = {
        "WorkersRunning": (fleet.running, "Count"), "WorkersDesired": (fleet.desired, "Count"),
        "ImagesAnswered": (minute["answered"], "Count"), "ImagesFailed": (minute["failed"], "Count"),
    }
    for name, key in (("AnswerLatencyP50", "latency_p50_s"), ("AnswerLatencyP90", "latency_p90_s")):
        if minute[key] is not None:
            values[name] = (minute[key], "Seconds")
    directive = {"Namespace": CLOUDWATCH_NAMESPACE, "Dimensions": [["Stack"]],
                 "Metrics": [{"Name": name, "Unit": unit} for name, (_, unit) in values.items()]}
    line = {"_aws": {"Timestamp": int(now * 1000), "CloudWatchMetrics": [directive]}, "Stack": stack,
            **{name: value for name, (value, _) in values.items()}}
    return json.dumps(line, separators=(",", ":"))
