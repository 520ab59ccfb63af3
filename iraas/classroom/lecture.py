"""Attendance across the whole lecture: the face function's second use case, after the first-frame CSV.

1. **Start** (in the invocation of the video's S3 event, once its CSV is written): the video,
   recognised by its container before its first frame was read (``iraas.classroom.sampling.probe``,
   in ``iraas.classroom.pipeline``: at least two frames, a duration, its frames' pixels), is bounded
   by its duration, cut into segments of ``segment_s`` on the sample grid, and each segment is sent to
   ``VideoSegmentQueue``, which invokes the same function again (on AWS, Lambda's SQS trigger; under
   ``iraas up``, a local runner). The run's record (``AttendanceRunsTable``) says how many there are;
   a second delivery of the same event (S3 delivers at least once) finds the run under way and
   queues nothing.
2. **A segment** reads only its own minutes of the video from S3 (by byte range), samples a frame
   every ``sample_every_s``, follows and recognises the faces (``iraas.classroom.tracking``), and
   stores what it saw as ``attendance-runs/<run>/<n>.json``. A segment that fails is retried by the
   queue; on its last try (the message's receive count is the queue's maxReceiveCount) it is stored
   as missing instead, so the report is still made and says which span it lacks.
3. **The merge**: the segment that completes the run reads every segment's result and writes
   ``<stem>.attendance.json``, ``<stem>.attendance.csv`` and the unknown people's crops
   (``iraas.classroom.attendance.merge``). The same object's event after the merge starts the run
   again and rewrites the same report.

A video that cannot be read, or is over the duration bound, gets a report that says why, with no
students (as its CSV has no rows).
"""

from __future__ import annotations

import json
import logging
import time
from dataclasses import asdict, dataclass
from typing import Any

from iraas import aws
from iraas.classroom import keys
from iraas.classroom.attendance import ATTENDANCE_CSV_HEADER, SegmentResult, merge, segment_bounds
from iraas.classroom.engines import engine_for
from iraas.classroom.engines.base import FaceEngine
from iraas.classroom.frames import UnreadableVideo
from iraas.classroom.gallery import Gallery
from iraas.classroom.run_store import DynamoRunStore, RunStore
from iraas.classroom.s3_video import S3VideoFile
from iraas.classroom.sampling import VideoInfo, check_duration, sample_frames
from iraas.classroom.settings import FaceSettings
from iraas.classroom.student_store import StudentStore, student_store
from iraas.classroom.students import MAX_LISTED_STUDENTS
from iraas.classroom.tracking import Observer
from iraas.classroom.videos import name_metadata_of, name_of
from iraas.queues import send_batches

log = logging.getLogger(__name__)


class MalformedSegment(ValueError):
    """A segment queue message that is not one this module sent."""


@dataclass(frozen=True)
class SegmentTask:
    """One segment of one run, as a VideoSegmentQueue message carries it."""

    bucket: str
    key: str
    run: str
    index: int
    total: int
    start_s: float
    end_s: float
    duration_s: float

    def to_message(self) -> str:
        return json.dumps(asdict(self), separators=(",", ":"))

    @classmethod
    def from_message(cls, body: str) -> SegmentTask:
        try:
            data = json.loads(body)
            task = cls(
                bucket=str(data["bucket"]), key=str(data["key"]), run=str(data["run"]), index=int(data["index"]),
                total=int(data["total"]), start_s=float(data["start_s"]), end_s=float(data["end_s"]),
                duration_s=float(data["duration_s"]),
            )
            keys.segment_key(task.run, task.index)  # checks the run id and index
        except (ValueError, KeyError, TypeError) as exc:
            raise MalformedSegment(f"not a segment of a lecture: {body[:200]!r} ({exc})") from None
        if not (0 <= task.index < task.total and 0 <= task.start_s < task.end_s <= task.duration_s):
            raise MalformedSegment(f"a segment outside its video: {body[:200]!r}")
        return task


@dataclass
class StartOutcome:
    run: str | None = None
    segments: int = 0
    duration_s: float = 0.0
    reason: str | None = None  # why no segments were queued: the video's own problem (its report says
    # it), or its run already under way (a second delivery of the same event)


@dataclass
class SegmentOutcome:
    run: str
    index: int
    receives: int = 1  # which try of the segment this was
    samples: int = 0
    students: int = 0
    descriptors: int = 0
    missing: bool = False
    merged: bool = False
    ms: float = 0.0


def run_store(settings: FaceSettings) -> RunStore:
    table = settings.require("runs_table").runs_table
    assert table is not None  # require() checked it
    return DynamoRunStore(aws.client(settings, "dynamodb"), table)


def start(settings: FaceSettings, bucket: str, key: str, info: VideoInfo, etag: str, runs: RunStore | None = None) -> StartOutcome:
    """Queue the segments of the video ``info`` describes (what ``probe`` found when the first
    frame was read: the file is not probed twice); for one over ``IRAAS_MAX_VIDEO_SECONDS``, write a
    report that says so instead (a video that is none gets :func:`refuse` from the pipeline)."""
    settings.require("video_output_bucket", "segment_queue_url", "runs_table")
    try:
        check_duration(info, settings.max_video_seconds)
    except UnreadableVideo as exc:
        refuse(settings, bucket, key, str(exc))
        return StartOutcome(reason=str(exc))
    run = keys.run_id(bucket, key, etag)
    bounds = segment_bounds(info.duration_s, settings.segment_s, settings.sample_every_s)
    if not (runs or run_store(settings)).start(run, len(bounds)):
        log.info("attendance of %s: its run is under way (a repeated event); nothing queued", key)
        return StartOutcome(run=run, duration_s=info.duration_s, reason="under way")
    tasks = [
        SegmentTask(bucket, key, run, n, len(bounds), start_s, end_s, info.duration_s).to_message()
        for n, (start_s, end_s) in enumerate(bounds)
    ]
    assert settings.segment_queue_url is not None  # require() checked it
    failed = send_batches(aws.client(settings, "sqs"), settings.segment_queue_url, tasks)
    if failed:  # the event is retried (Lambda retries it twice): the run starts again, whole
        raise RuntimeError(f"{len(failed)} of {len(tasks)} segments could not be queued: {failed[0]}")
    log.info("attendance of %s: %d segments of %.0f s queued", key, len(bounds), info.duration_s)
    return StartOutcome(run=run, segments=len(bounds), duration_s=info.duration_s)


def observe(settings: FaceSettings, task: SegmentTask, engine: FaceEngine, store: StudentStore) -> tuple[SegmentResult, int]:
    """What the segment's samples show, and how many descriptors that took."""
    gallery = Gallery.from_blobs(store.faces(), engine.descriptor_size)
    observer = Observer(engine, gallery, settings.tolerance, settings.margin, task.start_s, task.end_s,
                        max_detect_pixels=settings.max_detect_pixels)
    with S3VideoFile(aws.client(settings, "s3"), task.bucket, task.key) as video:
        samples = sample_frames(video, settings.sample_every_s, task.start_s, task.end_s)
        result = observer.observe_all((sample.t, sample.rgb) for sample in samples)
    return result, observer.described


def process_segment(
    settings: FaceSettings, task: SegmentTask, receive_count: int, engine: FaceEngine | None = None,
    runs: RunStore | None = None, store: StudentStore | None = None,
) -> SegmentOutcome:
    """Observe one segment, store what it saw, and merge the report if it completes the run.

    An error is raised for the queue to retry, except on the segment's last try
    (``receive_count`` at ``segment_max_receives``): then the segment is stored as missing."""
    settings.require("video_output_bucket", "students_table", "runs_table")
    started = time.perf_counter()
    runs = runs or run_store(settings)
    store = store or student_store(settings)
    outcome = SegmentOutcome(task.run, task.index, receive_count)
    try:
        result, outcome.descriptors = observe(settings, task, engine or engine_for(settings), store)
    except Exception as exc:
        if receive_count < settings.segment_max_receives:
            raise
        log.exception("segment %d of run %s failed for good on try %d", task.index, task.run, receive_count)
        result = SegmentResult(task.start_s, task.end_s, missing=True, detail=f"{type(exc).__name__}: {exc}")
    outcome.samples, outcome.students, outcome.missing = len(result.sample_times), len(result.seen), result.missing
    s3 = aws.client(settings, "s3")
    s3.put_object(
        Bucket=settings.video_output_bucket, Key=keys.segment_key(task.run, task.index),
        Body=json.dumps(result.to_dict()).encode(), ContentType="application/json",
    )
    if runs.finish(task.run, task.index, missing=result.missing, retry=receive_count > 1):
        write_report(settings, task, store)
        runs.merged(task.run)
        outcome.merged = True
    outcome.ms = round((time.perf_counter() - started) * 1000, 1)
    return outcome


def write_report(settings: FaceSettings, task: SegmentTask, store: StudentStore) -> dict[str, Any]:
    """Merge the run's segments into the video's report, its CSV and its unknown people's crops."""
    assert settings.video_output_bucket is not None
    s3 = aws.client(settings, "s3")
    segments = [
        SegmentResult.from_dict(json.loads(
            s3.get_object(Bucket=settings.video_output_bucket, Key=keys.segment_key(task.run, n))["Body"].read()
        ))
        for n in range(task.total)
    ]
    head = s3.head_object(Bucket=task.bucket, Key=task.key)
    metadata = head.get("Metadata") or {}
    summaries, _ = store.summaries(MAX_LISTED_STUDENTS)
    roster = [s.name for s in summaries if s.id]  # students with a record; faces enrolled alone are no roster
    seen = {name for segment in segments for name in segment.seen}
    report, crops = merge(
        name_of(metadata) or task.key, task.duration_s, settings.sample_every_s, segments, roster,
        store.records(seen), settings.tolerance, settings.min_present_s,
    )
    _write(settings, task.key, report.to_dict(), report.csv_text(), metadata)
    for index, crop in enumerate(crops):
        if crop:
            s3.put_object(
                Bucket=settings.video_output_bucket, Key=keys.unknown_crop_key(task.key, index), Body=crop,
                ContentType="image/jpeg",
            )
    log.info("attendance of %s written: %d students, %d unknown", task.key, len(report.students), report.unknown_faces)
    return report.to_dict()


def refuse(settings: FaceSettings, bucket: str, key: str, reason: str) -> None:
    """The report of a video whose attendance cannot be taken: no students, and why."""
    head = aws.client(settings, "s3").head_object(Bucket=bucket, Key=key)
    metadata = head.get("Metadata") or {}
    body = {
        "video": name_of(metadata) or key, "duration_s": 0.0, "sample_every_s": settings.sample_every_s,
        "frames_sampled": 0, "students": [], "unknown_faces": 0, "unknown": [], "absent": [],
        "missing_spans": [], "error": {"code": "unreadable_video", "message": reason},
    }
    _write(settings, key, body, ",".join(ATTENDANCE_CSV_HEADER) + "\n", metadata)


def _write(settings: FaceSettings, key: str, report: dict[str, Any], csv_text: str, metadata: dict[str, str]) -> None:
    s3 = aws.client(settings, "s3")
    kept = name_metadata_of(metadata)  # the user's file name, for the web tier
    s3.put_object(
        Bucket=settings.video_output_bucket, Key=keys.attendance_csv_key(key), Body=csv_text.encode(),
        ContentType="text/csv; charset=utf-8", Metadata=kept,
    )
    s3.put_object(
        Bucket=settings.video_output_bucket, Key=keys.attendance_json_key(key),
        Body=json.dumps(report).encode(), ContentType="application/json", Metadata=kept,
    )
