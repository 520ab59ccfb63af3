"""The classroom pipeline's settings: its resources, the engine and its tolerance, input bounds."""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

from iraas.config import MIB, AwsSettings, integer, load_aws, missing_resource, number, resource
from iraas.errors import ConfigError
from iraas.media.uploads import UploadLimits, load_upload_limits

# Settings field -> the template's logical id of the resource it names.
_RESOURCE_IDS = {
    "video_input_bucket": "VideoInputBucket",
    "video_output_bucket": "VideoOutputBucket",
    "students_table": "StudentsTable",
}


@dataclass(frozen=True)
class FaceSettings(AwsSettings):
    """Resources may be absent (the image deployables load these too): callers ``require`` them."""

    video_input_bucket: str | None
    video_output_bucket: str | None
    students_table: str | None
    engine: str = "dlib"
    tolerance: float = 0.6  # the engine's default unless IRAAS_FACE_TOLERANCE says otherwise
    margin: float = 0.92  # nearest / second-nearest person at most this; the engine's unless IRAAS_FACE_MARGIN
    max_video_bytes: int = 512 * MIB  # the function's /tmp holds the whole video
    max_frame_pixels: int = 40_000_000  # above 8K; a larger first frame is refused, not decoded
    # Enrolment photos are bounded like image uploads (the same variables, the same defaults).
    photo_limits: UploadLimits = field(default_factory=UploadLimits)
    facenet_weights: Path | None = None

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
        engine=engine,
        tolerance=number(env, "IRAAS_FACE_TOLERANCE", ENGINES[engine].default_tolerance, 0.05, 2.0),
        margin=number(env, "IRAAS_FACE_MARGIN", ENGINES[engine].default_margin, 0.5, 1.0),
        max_video_bytes=integer(env, "IRAAS_MAX_VIDEO_BYTES", FaceSettings.max_video_bytes, 1024, 10 * 1024 * MIB),
        max_frame_pixels=integer(env, "IRAAS_MAX_FRAME_PIXELS", FaceSettings.max_frame_pixels, 1024, 500_000_000),
        photo_limits=load_upload_limits(env),
        facenet_weights=Path(weights).expanduser() if weights else None,
    )
