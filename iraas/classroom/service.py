"""The classroom's web use cases: import students, upload a video, fetch its CSV.

boto3 only (the web tier imports this); the recognition itself runs in FaceRecognitionFunction.
"""

from __future__ import annotations

from typing import Any

from iraas import aws
from iraas.classroom.keys import csv_key, upload_key
from iraas.classroom.settings import FaceSettings
from iraas.classroom.students import InvalidStudents, parse_students_json, student_store
from iraas.errors import ApiError, ConfigError

# API Gateway's 10 MB payload (about 4.5 MiB through Lambda's base64): longer videos go straight
# to the bucket (`iraas videos submit`, `aws s3 cp`).
MAX_HTTP_VIDEO_BYTES = 10 * 1024 * 1024


class ClassroomService:
    def __init__(self, settings: FaceSettings) -> None:
        self.settings = settings

    def _need(self, *fields: str) -> FaceSettings:
        try:
            return self.settings.require(*fields)
        except ConfigError as exc:
            raise ApiError(503, "not_configured", str(exc)) from None

    def import_students(self, body: bytes | str | None) -> int:
        self._need("students_table")
        try:
            records = parse_students_json(body or b"")
        except InvalidStudents as exc:
            raise ApiError(400, "invalid_students", str(exc)) from None
        return student_store(self.settings).put_students(records)

    def submit_video(self, name: str | None, body: bytes | None) -> dict[str, Any]:
        self._need("video_input_bucket", "video_output_bucket")
        if not body:
            raise ApiError(400, "no_file", "the request has no video in its body")
        if len(body) > MAX_HTTP_VIDEO_BYTES:
            raise ApiError(413, "too_large", f"videos over {MAX_HTTP_VIDEO_BYTES} bytes must go to the bucket directly")
        try:
            key = upload_key(name or "")
        except ValueError as exc:
            raise ApiError(400, "not_a_video", str(exc)) from None
        aws.client(self.settings, "s3").put_object(Bucket=self.settings.video_input_bucket, Key=key, Body=body)
        return {"video": key, "csv": csv_key(key), "status": "queued"}

    def find_csv(self, name: str) -> str | None:
        """The CSV of an uploaded video (by the name ``submit_video`` answered), None if not there yet."""
        self._need("video_output_bucket")
        try:
            key = csv_key(upload_key(name))
        except ValueError:
            return None
        s3 = aws.client(self.settings, "s3")
        try:
            body = s3.get_object(Bucket=self.settings.video_output_bucket, Key=key)["Body"]
        except Exception as exc:
            if aws.is_not_found(exc):
                return None
            raise
        text: str = body.read().decode()
        return text
