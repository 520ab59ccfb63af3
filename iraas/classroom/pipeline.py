"""One video in, one CSV out: the use case the S3-triggered function runs.

The downloaded file is recognised as a video by its container before anything is decoded
(``iraas.classroom.sampling.probe``: a video stream, at least two frames, a duration, frames within
``IRAAS_MAX_FRAME_PIXELS``), so a still image, a text file or a single frame named ``.avi`` or
``.mp4`` is refused with the reason and no face detection runs; only then is the first frame read
(OpenCV) and its faces looked for in it scaled to at most ``IRAAS_MAX_DETECT_PIXELS``.

Bad content (not a video, too large, undecodable, no face, nobody enrolled) gives a header-only
CSV and a reason; it is never an exception, so S3's retries are spent only on real failures
(throttling, an unreachable table). Writing the CSV under a key derived from the video's key
makes a repeated event overwrite it with the same content.
"""

from __future__ import annotations

import logging
import tempfile
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from iraas import aws
from iraas.classroom.engines import engine_for
from iraas.classroom.engines.base import FaceEngine
from iraas.classroom.frames import UnreadableVideo, first_frame
from iraas.classroom.gallery import Gallery
from iraas.classroom.keys import csv_key, is_video_key
from iraas.classroom.sampling import VideoInfo, probe
from iraas.classroom.settings import FaceSettings
from iraas.classroom.student_store import StudentStore, student_store
from iraas.classroom.students import StudentRecord, csv_text
from iraas.classroom.videos import name_metadata_of

log = logging.getLogger(__name__)

# Why a CSV has no rows (or why there is no CSV); the handler counts each as a metric.
NOT_A_VIDEO = "not_a_video"
TOO_LARGE = "too_large"
UNREADABLE = "unreadable_video"
NO_FACES = "no_faces"
UNKNOWN_FACES = "unknown_faces"


@dataclass
class VideoOutcome:
    bucket: str
    key: str
    csv_key: str | None = None  # None: no CSV written (the object is not a video)
    faces: int = 0
    recognised: list[str] = field(default_factory=list)
    unknown: int = 0
    without_record: list[str] = field(default_factory=list)
    reason: str | None = None  # set when the CSV has no rows
    detail: str | None = None
    latency_ms: float = 0.0  # first frame to CSV written
    attendance_segments: int = 0  # the whole lecture's segments queued (0: no attendance started)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def recognise(
    frame: Any, engine: FaceEngine, store: StudentStore, tolerance: float, outcome: VideoOutcome,
    margin: float = 1.0, max_detect_pixels: int | None = FaceSettings.max_detect_pixels,
) -> list[StudentRecord]:
    """Fill ``outcome`` with what the frame shows; return the records of the recognised students.

    Faces are looked for in the frame scaled to at most ``max_detect_pixels`` and described on its
    own pixels. A face is a student's when that student's nearest descriptor is within ``tolerance``
    and at most ``margin`` times as far as anyone else's; any other face counts as unknown."""
    faces = engine.faces(frame, max_detect_pixels)
    outcome.faces = len(faces)
    if not faces:
        outcome.reason = NO_FACES
        return []
    # Read every time: new enrolments count at once.
    gallery = Gallery.from_blobs(store.faces(), engine.descriptor_size)
    names: set[str] = set()
    for face in faces:
        match = gallery.match(face.descriptor, tolerance, margin)
        log.debug("face at %s: %s (distance %.3f, second person %.3f)", face.box, match.name, match.distance,
                  match.runner_up)
        if match.name is None:
            outcome.unknown += 1
        else:
            names.add(match.name)
    outcome.recognised = sorted(names)
    records = store.records(names)
    # A face enrolled before its record: still a recognised student, with empty fields.
    outcome.without_record = sorted(names - records.keys())
    rows = list(records.values()) + [StudentRecord("", n, "", "") for n in outcome.without_record]
    if not rows:
        outcome.reason = UNKNOWN_FACES
    return rows


def process_video(
    settings: FaceSettings, bucket: str, key: str, engine: FaceEngine | None = None
) -> VideoOutcome:
    """Recognise the video by its container, read its first frame, recognise the students, write
    ``<stem>.csv`` (with the user's file name of an HTTP upload in its metadata, as the video had
    it); then, where the stack has a segment queue, start the whole lecture's attendance
    (``iraas.classroom.lecture``, given what the probe found: the CSV is written first, so the
    seed's answer comes as fast as without it)."""
    settings.require("video_output_bucket", "students_table")
    outcome = VideoOutcome(bucket=bucket, key=key)
    if not is_video_key(key):  # nothing in enrolments/ is a video: the photos there are enrol.py's
        outcome.reason = NOT_A_VIDEO
        return outcome
    outcome.csv_key = csv_key(key)
    s3 = aws.client(settings, "s3")
    store = student_store(settings)
    head = s3.head_object(Bucket=bucket, Key=key)
    size = head["ContentLength"]
    rows: list[StudentRecord] = []
    started = time.perf_counter()
    with tempfile.TemporaryDirectory(prefix="iraas-video-") as folder:
        path: Path | None = None
        info: VideoInfo | None = None
        if size > settings.max_video_bytes:  # bounded before anything is downloaded
            outcome.reason, outcome.detail = TOO_LARGE, f"{size} bytes > {settings.max_video_bytes}"
        else:
            # OpenCV reads files, and an MP4's index may sit at its end: fetch the whole video.
            path = Path(folder) / ("video" + Path(key).suffix.lower())
            s3.download_file(bucket, key, str(path))
            started = time.perf_counter()
            try:
                # Its container first: a still image or one frame named .avi is no video, and is
                # refused here, before a pixel is decoded. Any length: the duration bounds only the
                # attendance (lecture.start), not the first frame.
                info = probe(path, settings.max_frame_pixels, keyframes=False)
                frame = first_frame(path, settings.max_frame_pixels)
            except UnreadableVideo as exc:
                outcome.reason, outcome.detail = UNREADABLE, str(exc)
                frame = None
            if frame is not None:
                engine = engine or engine_for(settings)
                rows = recognise(frame, engine, store, settings.tolerance, outcome, settings.margin,
                                 settings.max_detect_pixels)
        s3.put_object(
            Bucket=settings.video_output_bucket,
            Key=outcome.csv_key,
            Body=csv_text(rows).encode(),
            ContentType="text/csv; charset=utf-8",
            Metadata=name_metadata_of(head.get("Metadata") or {}),  # the user's file name, for the web tier
        )
        outcome.latency_ms = round((time.perf_counter() - started) * 1000, 1)
        if settings.segment_queue_url and settings.runs_table:
            from iraas.classroom import lecture

            if path is None:
                lecture.refuse(settings, bucket, key, f"the video is too large: {outcome.detail}")
            elif info is None:  # no video (its CSV's outcome says why)
                lecture.refuse(settings, bucket, key, outcome.detail or "it is not a video")
            else:  # a video, even where OpenCV could not read its first frame: PyAV samples it
                started_run = lecture.start(settings, bucket, key, info, str(head.get("ETag", "")))
                outcome.attendance_segments = started_run.segments
    return outcome
