"""The classroom pipeline's settings: its resources, the engine and its tolerance, input bounds."""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

from iraas.config import MIB, AwsSettings, flag, integer, load_aws, missing_resource, number, resource
from iraas.errors import ConfigError
from iraas.media.uploads import UploadLimits, load_upload_limits

# Settings field -> the template's logical id of the resource it names.
_RESOURCE_IDS = {
    "video_input_bucket": "VideoInputBucket",
    "video_output_bucket": "VideoOutputBucket",
    "students_table": "StudentsTable",
    "segment_queue_url": "VideoSegmentQueue",
    "runs_table": "AttendanceRunsTable",
}


@dataclass(frozen=True)
class FaceSettings(AwsSettings):
    """Resources may be absent (the image deployables load these too): callers ``require`` them."""

    video_input_bucket: str | None
    video_output_bucket: str | None
    students_table: str | None
    segment_queue_url: str | None = None  # a long lecture's segments, fanned out to more invocations
    runs_table: str | None = None  # which segments of a video are done: the last one merges the report
    engine: str = "dlib"
    tolerance: float = 0.6  # the engine's default unless IRAAS_FACE_TOLERANCE says otherwise
    margin: float = 0.92  # nearest / second-nearest person at most this; the engine's unless IRAAS_FACE_MARGIN
    # The S3 event's invocation downloads the whole video (the function's /tmp: template.yaml's
    # EphemeralStorage, 10,240 MB) for its first frame; segments read theirs by byte range. 8 GiB
    # admits a 2-hour 1080p lecture at up to 9 Mbit/s.
    max_video_bytes: int = 8 * 1024 * MIB
    max_video_seconds: float = 7200.0  # two hours: longer videos get the first-frame CSV and no attendance
    max_frame_pixels: int = 40_000_000  # above 8K; a larger first frame is refused, not decoded
    # Detection looks at a frame (or an enrolment photo) scaled down to at most this many pixels and
    # describes the faces it finds on the full frame: 4K UHD, so a 4K camera's frames and every shared
    # test photo (4.1 MP at most) are searched as they are, and a 40-megapixel frame costs a 4K one.
    max_detect_pixels: int = 3840 * 2160
    sample_every_s: float = 1.0  # attendance samples one frame this often
    min_present_s: float = 300.0  # seen this long: present, else partial (half of a shorter lecture)
    segment_s: float = 60.0  # a segment of a long lecture, observed by one invocation
    segment_max_receives: int = 5  # the segment queue's maxReceiveCount: the last try records a gap
    # Enrolment photos are bounded like image uploads (the same variables, the same defaults).
    photo_limits: UploadLimits = field(default_factory=UploadLimits)
    facenet_weights: Path | None = None
    # Publish the function's videos and durations for GET /metrics (IRAAS_FUNCTION_METRICS; iraas up).
    publish_metrics: bool = False

    def require(self, *fields: str) -> FaceSettings:
        """Check that the named resources are configured; raise ConfigError naming the variable."""
        for name in fields:
            if not getattr(self, name):
                raise missing_resource(_RESOURCE_IDS[name], self.home)
        return self


def load_face_settings(env: Mapping[str, str] | None = None) -> FaceSettings:
    """Read and check the classroom settings; the engine's name must be in the registry."""
    from iraas.classroom.engines import ENGINES  # the registry alone: no engine is imported

    env = dict(os.environ if env is None else env)
    where, resources = load_aws(env)
    engine = env.get("IRAAS_FACE_ENGINE") or "dlib"
    if engine not in ENGINES:
        raise ConfigError(f"IRAAS_FACE_ENGINE={engine!r} is not one of {', '.join(map(repr, ENGINES))}")
    weights = env.get("IRAAS_FACENET_WEIGHTS")
    return FaceSettings(
        region=where.region,
        endpoint_url=where.endpoint_url,
        home=where.home,
        video_input_bucket=resource(env, resources, "VideoInputBucket"),
        video_output_bucket=resource(env, resources, "VideoOutputBucket"),
        students_table=resource(env, resources, "StudentsTable"),
        segment_queue_url=resource(env, resources, "VideoSegmentQueue"),
        runs_table=resource(env, resources, "AttendanceRunsTable"),
        engine=engine,
        tolerance=number(env, "IRAAS_FACE_TOLERANCE", ENGINES[engine].default_tolerance, 0.05, 2.0),
        margin=number(env, "IRAAS_FACE_MARGIN", ENGINES[engine].default_margin, 0.5, 1.0),
        max_video_bytes=integer(env, "IRAAS_MAX_VIDEO_BYTES", FaceSettings.max_video_bytes, 1024, 10 * 1024 * MIB),
        max_video_seconds=number(env, "IRAAS_MAX_VIDEO_SECONDS", FaceSettings.max_video_seconds, 1, 86_400),
        sample_every_s=number(env, "IRAAS_ATTENDANCE_SAMPLE_S", FaceSettings.sample_every_s, 0.1, 60),
        min_present_s=number(env, "IRAAS_ATTENDANCE_MIN_PRESENT_S", FaceSettings.min_present_s, 0, 86_400),
        segment_s=number(env, "IRAAS_ATTENDANCE_SEGMENT_S", FaceSettings.segment_s, 5, 3600),
        segment_max_receives=integer(env, "IRAAS_SEGMENT_MAX_RECEIVES", FaceSettings.segment_max_receives, 1, 1000),
        max_frame_pixels=integer(env, "IRAAS_MAX_FRAME_PIXELS", FaceSettings.max_frame_pixels, 1024, 500_000_000),
        # At least 320 x 240: HOG finds faces from about 60 px, so a smaller cap would find none.
        max_detect_pixels=integer(env, "IRAAS_MAX_DETECT_PIXELS", FaceSettings.max_detect_pixels, 320 * 240, 500_000_000),
        photo_limits=load_upload_limits(env),
        facenet_weights=Path(weights).expanduser() if weights else None,
        publish_metrics=flag(env, "IRAAS_FUNCTION_METRICS"),
    )
