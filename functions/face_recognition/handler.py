"""FaceRecognitionFunction: an S3 ObjectCreated event in, one first-frame CSV per video out (then its
whole lecture's attendance started), and one enrolment outcome per photo the web tier stored under
``enrolments/``; a VideoSegmentQueue event in, one segment of a lecture observed (and the report
merged by the segment that completes it).

Thin on purpose: parse the event (Powertools' S3Event or SQSEvent), send each record on to
``iraas.classroom.enrol.enrol_upload`` (``enrolments/``), ``iraas.classroom.pipeline.process_video``
(any other object) or ``iraas.classroom.lecture.process_segment`` (a segment), count and log the
outcome. The same function runs in Lambda (container image, see Dockerfile) and under ``iraas up``'s
local runners, which hand it the events as Lambda would.
"""

from __future__ import annotations

from dataclasses import asdict
from typing import Any
from urllib.parse import unquote_plus

from aws_lambda_powertools import Logger, Metrics
from aws_lambda_powertools.metrics import MetricUnit
from aws_lambda_powertools.utilities.data_classes import S3Event, SQSEvent
from aws_lambda_powertools.utilities.typing import LambdaContext

from iraas.classroom import function_metrics, lecture, pipeline
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
def lambda_handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    records = event.get("Records") or [{}]
    if records[0].get("eventSource") == "aws:sqs":
        return {"segments": [_segment(record) for record in SQSEvent(event).records]}
    return _objects(S3Event(event))


def _objects(event: S3Event) -> dict[str, Any]:
    videos, enrolments = [], []
    for record in event.records:
        # S3 event keys are URL-encoded with '+' for spaces: "Class+1.mp4" is "Class 1.mp4".
        key = unquote_plus(record.s3.get_object.key)
        if is_enrolment_key(key):
            enrolments.append(_enrol(record.s3.bucket.name, key))
            continue
        outcome = pipeline.process_video(SETTINGS, record.s3.bucket.name, key, ENGINE)
        function_metrics.record_video(SETTINGS, outcome)  # for GET /metrics, under iraas up only
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


def _segment(record: Any) -> dict[str, Any]:
    """One segment of a lecture; an error is raised for the queue to retry (SQS batches of one)."""
    try:
        task = lecture.SegmentTask.from_message(record.body)
    except lecture.MalformedSegment as exc:  # nothing to retry: recorded in the log and dropped
        metrics.add_metric(name="MalformedSegments", unit=MetricUnit.Count, value=1)
        logger.error("dropped a segment message that is not one", extra={"error": str(exc)})
        return {"error": str(exc)}
    receives = int(record.attributes.approximate_receive_count)
    outcome = lecture.process_segment(SETTINGS, task, receives, ENGINE)
    metrics.add_metric(name="SegmentsObserved", unit=MetricUnit.Count, value=1)
    metrics.add_metric(name="SegmentMilliseconds", unit=MetricUnit.Milliseconds, value=outcome.ms)
    if outcome.missing:
        metrics.add_metric(name="SegmentsMissing", unit=MetricUnit.Count, value=1)
    if outcome.merged:
        metrics.add_metric(name="AttendanceReports", unit=MetricUnit.Count, value=1)
    logger.info("segment observed", extra=asdict(outcome))
    return asdict(outcome)


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
