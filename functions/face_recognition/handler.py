"""FaceRecognitionFunction: an S3 ObjectCreated event in, one attendance CSV per video out, and one
enrolment outcome per photo the web tier stored under ``enrolments/``.

Thin on purpose: parse the event (Powertools' S3Event), send each record by its key's folder to
``iraas.classroom.enrol.enrol_upload`` (``enrolments/``) or ``iraas.classroom.pipeline.process_video``
(anything else), count and log the outcome. The same function runs in Lambda (container image,
see Dockerfile) and under ``iraas up``'s local runner, which hands it the S3 event unchanged.
"""

from __future__ import annotations

from typing import Any
from urllib.parse import unquote_plus

from aws_lambda_powertools import Logger, Metrics
from aws_lambda_powertools.metrics import MetricUnit
from aws_lambda_powertools.utilities.data_classes import S3Event, event_source
from aws_lambda_powertools.utilities.typing import LambdaContext

from iraas.classroom import pipeline
from iraas.classroom.engines import engine_for
from iraas.classroom.enrol import enrol_upload
from iraas.classroom.enrolments import ENROLLED
from iraas.classroom.keys import is_enrolment_key
from iraas.classroom.settings import load_face_settings

logger = Logger(service="face-recognition")
metrics = Metrics(namespace="IRaaS", service="face-recognition")

# Read and checked at cold start; the engine loads (and warms up) here too, not on the first video.
SETTINGS = load_face_settings().require("video_output_bucket", "students_table")
ENGINE = engine_for(SETTINGS)

_REASON_METRICS = {
    pipeline.NOT_A_VIDEO: "SkippedObjects",
    pipeline.TOO_LARGE: "TooLargeVideos",
    pipeline.UNREADABLE: "UnreadableVideos",
    pipeline.NO_FACES: "VideosWithoutFaces",
    pipeline.UNKNOWN_FACES: "VideosWithOnlyUnknownFaces",
}


@metrics.log_metrics(capture_cold_start_metric=True)
@logger.inject_lambda_context
@event_source(data_class=S3Event)
def lambda_handler(event: S3Event, context: LambdaContext) -> dict[str, Any]:
    videos, enrolments = [], []
    for record in event.records:
        # S3 event keys are URL-encoded with '+' for spaces: "Class+1.mp4" is "Class 1.mp4".
        key = unquote_plus(record.s3.get_object.key)
        if is_enrolment_key(key):
            enrolments.append(_enrol(record.s3.bucket.name, key))
            continue
        outcome = pipeline.process_video(SETTINGS, record.s3.bucket.name, key, ENGINE)
        if outcome.reason:
            metrics.add_metric(name=_REASON_METRICS[outcome.reason], unit=MetricUnit.Count, value=1)
            logger.warning("no student recognised", extra=outcome.to_dict())
        else:
            logger.info("attendance written", extra=outcome.to_dict())
        if outcome.csv_key:
            metrics.add_metric(name="VideosProcessed", unit=MetricUnit.Count, value=1)
            metrics.add_metric(name="FacesFound", unit=MetricUnit.Count, value=outcome.faces)
            metrics.add_metric(name="StudentsRecognised", unit=MetricUnit.Count, value=len(outcome.recognised))
            metrics.add_metric(name="UnknownFaces", unit=MetricUnit.Count, value=outcome.unknown)
            metrics.add_metric(name="FirstFrameToCsv", unit=MetricUnit.Milliseconds, value=outcome.latency_ms)
        videos.append(outcome.to_dict())
    return {"videos": videos, "enrolments": enrolments}


def _enrol(bucket: str, key: str) -> dict[str, Any]:
    outcome = enrol_upload(SETTINGS, bucket, key, ENGINE)
    if outcome is None:  # in enrolments/ but not a key the web tier makes
        metrics.add_metric(name="SkippedObjects", unit=MetricUnit.Count, value=1)
        logger.warning("skipped an object in enrolments/ that is no enrolment photo", extra={"key": key})
        return {"key": key, "status": "skipped"}
    if outcome.status == ENROLLED:
        metrics.add_metric(name="FacesEnrolled", unit=MetricUnit.Count, value=1)
        logger.info("face enrolled", extra=outcome.to_dict())
    else:
        metrics.add_metric(name="FailedEnrolments", unit=MetricUnit.Count, value=1)
        logger.warning("enrolment failed", extra=outcome.to_dict())
    return outcome.to_dict()
