"""iraas/cli/status.py, `iraas status --url`: what a running web tier's GET /v1/stats (and /v1/metrics) becomes."""

from __future__ import annotations

from iraas.cli import status as stack_status

STATS = {
    "queue": {"visible": 7, "in_flight": 3},
    "dead_letter": {"visible": 1, "in_flight": 0},
    "workers": {"running": 2, "desired": 4, "fleet": "ec2", "updated_at": 1000.0, "max": 19, "capped_by": "setting",
                "field_from_a_newer_version": True},
}
METRICS = {
    "last_minute": {"answered": 120, "failed": 2, "images_per_s": 2.0, "latency_p50_s": 0.21, "latency_p90_s": 0.5},
    "workers_reporting": 2,
}


def test_stats_from_a_web_tier_read_as_queue_depths_and_workers() -> None:
    status = stack_status.from_stats("https://api.example.com", STATS)
    assert stack_status.describe(status, now=1012.0) == [
        "stack        https://api.example.com",
        "requests     7 waiting, 3 in flight",
        "dead letters 1",
        "workers      2 running, 4 desired, at most 19 (IRAAS_MAX_WORKERS); ec2 fleet, as of 12 s ago",
    ]


def test_metrics_where_the_web_tier_has_them_add_the_throughput() -> None:
    status = stack_status.from_stats("https://api.example.com", STATS, METRICS)
    assert stack_status.describe(status, now=1012.0)[-1] == (
        "throughput   120 answered in the last minute, 2.00 images/s, 2 failed; latency p50 210 ms, p90 500 ms "
        "(2 workers reporting)"
    )


def test_an_empty_or_odd_stats_body_reads_as_nothing_reported() -> None:
    lines = stack_status.describe(stack_status.from_stats("http://h", {"queue": None}), now=0)
    assert lines[1:] == [
        "requests     0 waiting, 0 in flight",
        "workers      none reported yet (no scaler has published the fleet's size)",
    ]
