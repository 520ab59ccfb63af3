"""The face function's videos and their durations, published for ``GET /metrics`` where it exists.

Each function process keeps a tally of the videos it processed since it started: the outcome
(``ok``, or the pipeline's reason for a CSV without students) and the seconds from the first frame
to the CSV written. After each video it PUTs the tally as ``status/functions/<host>-<pid>.json`` in
the video output bucket: one call per video, only with ``IRAAS_FUNCTION_METRICS`` (``iraas up``
sets it). On AWS the route does not exist, and the function's Powertools metrics go to CloudWatch.
"""

from __future__ import annotations

import json
import os
import socket
import threading
from typing import Any

from iraas import aws
from iraas.classroom.pipeline import VideoOutcome
from iraas.classroom.settings import FaceSettings
from iraas.names import safe_segment
from iraas.tallies import Tally, sum_tallies

PREFIX = "status/functions/"  # in the video output bucket
OK = "ok"
_tally = Tally()  # this process's (a forked runner starts from the zygote's, which has none)
_lock = threading.Lock()


def record_video(settings: FaceSettings, outcome: VideoOutcome) -> None:
    """Count a video that got its CSV and publish this process's tally (with IRAAS_FUNCTION_METRICS)."""
    if not settings.publish_metrics or not outcome.csv_key or not settings.video_output_bucket:
        return
    with _lock:
        _tally.record(outcome.reason or OK, outcome.latency_ms / 1000)
        body = json.dumps({"v": 1, "tally": _tally.to_dict()}, separators=(",", ":")).encode()
    key = f"{PREFIX}{safe_segment(f'{socket.gethostname()}-{os.getpid()}')}.json"
    aws.client(settings, "s3").put_object(
        Bucket=settings.video_output_bucket, Key=key, Body=body, ContentType="application/json"
    )


def videos_tally(s3: Any, bucket: str) -> Tally:
    """Every function process's videos, summed (a LIST and a GET per process)."""
    return sum_tallies(s3, bucket, PREFIX, lambda data: Tally.from_dict(data["tally"]) if data.get("v") == 1 else None)
