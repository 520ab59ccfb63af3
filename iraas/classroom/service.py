"""The classroom's use cases: import, list and remove students, enrol a face from a photo and
read the outcome, upload a video, list videos and fetch a video's CSV and attendance report.

boto3 and Pillow only (the web tier imports this); the face engine runs in FaceRecognitionFunction,
which the photo or video stored here starts.
"""

from __future__ import annotations

from dataclasses import asdict
from typing import Any

from iraas import aws
from iraas.classroom import enrolments, videos
from iraas.classroom.keys import is_enrolment_id, is_video_id, video_extension
from iraas.classroom.settings import FaceSettings
from iraas.classroom.student_store import StudentStore, student_store
from iraas.classroom.students import MAX_LISTED_STUDENTS, parse_students_json
from iraas.errors import ConfigError, InvalidRequest, NotConfigured, NotFound, TooLarge
from iraas.media.uploads import parse_upload

# API Gateway's 10 MB payload (about 4.5 MiB through Lambda's base64): longer videos go straight
# to the bucket (`iraas videos submit`, `aws s3 cp`).
MAX_HTTP_VIDEO_BYTES = 10 * 1024 * 1024
MAX_UNKNOWN_FACES = 10_000  # an unknown face's index in a report (iraas.classroom.keys.unknown_crop_key)


class ClassroomService:
    def __init__(self, settings: FaceSettings, students: StudentStore | None = None) -> None:
        self.settings = settings
        self._students = students  # None: the configured StudentsTable

    def _store(self) -> StudentStore:
        self._need("students_table")
        return self._students or student_store(self.settings)

    def _need(self, *fields: str) -> FaceSettings:
        try:
            return self.settings.require(*fields)
        except ConfigError as exc:
            raise NotConfigured(str(exc)) from None

    def import_students(self, body: bytes | str | None) -> dict[str, int]:
        """The course format: a JSON list of {"id", "name", "major", "year"}; existing faces are kept,
        records already as given are not written. ``{"imported", "new", "changed", "unchanged"}``.
        InvalidStudents, or TooManyStudents (checked before the records are), if the body is not one."""
        store = self._store()
        return store.put_students(parse_students_json(body or b"")).as_json()

    def list_students(self) -> dict[str, Any]:
        """Up to MAX_LISTED_STUDENTS students by name, each with its count of enrolled faces."""
        students, truncated = self._store().summaries(MAX_LISTED_STUDENTS)
        return {"students": [asdict(s) for s in students], "truncated": truncated}

    def delete_student(self, name: str) -> None:
        """Remove a student's record and enrolled faces."""
        if not self._store().delete(name):
            raise NotFound("not_found", f"no student named {name!r}")

    def submit_photo(self, name: str, body: bytes | None, content_type: str | None) -> dict[str, Any]:
        """Store a photo of ``name`` for the face function to enrol; the outcome is read by its id."""
        self._need("students_table", "video_input_bucket")
        upload = parse_upload(body, content_type, None, self.settings.photo_limits)  # checked as image uploads are
        if not self._store().exists(name):
            raise NotFound("not_found", f"no student named {name!r}")
        assert self.settings.video_input_bucket is not None  # _need() checked it
        enrolment_id = enrolments.store_photo(
            aws.client(self.settings, "s3"), self.settings.video_input_bucket, name, upload.data,
            upload.info.format, upload.info.mime,
        )
        return {"enrolment": enrolment_id, "status": enrolments.PENDING}

    def find_enrolment(self, enrolment_id: str) -> dict[str, Any] | None:
        """The outcome of an enrolment, None while it is pending; NotFound for an id we never make."""
        self._need("video_output_bucket")
        if not is_enrolment_id(enrolment_id):
            raise NotFound("not_found", f"no enrolment with id {enrolment_id!r}")
        assert self.settings.video_output_bucket is not None
        return enrolments.find_outcome(aws.client(self.settings, "s3"), self.settings.video_output_bucket, enrolment_id)

    def submit_video(
        self, owner: str, name: str | None, body: bytes | None, content_type: str | None = None
    ) -> dict[str, Any]:
        """Store ``owner``'s video under a key of the service's making, the user's ``name`` in its
        metadata; answers its id, the name, and the name its CSV will be downloaded as."""
        self._need("video_input_bucket", "video_output_bucket")
        if not body:
            raise InvalidRequest("no_file", "the request has no video in its body")
        if len(body) > MAX_HTTP_VIDEO_BYTES:
            raise TooLarge("too_large", f"videos over {MAX_HTTP_VIDEO_BYTES} bytes must go to the bucket directly")
        if name is not None and len(name) > videos.MAX_VIDEO_NAME_CHARS:
            raise InvalidRequest("bad_name", f"a video's name has at most {videos.MAX_VIDEO_NAME_CHARS} characters")
        try:
            extension = video_extension(name, content_type)
        except ValueError as exc:
            raise InvalidRequest("not_a_video", str(exc)) from None
        assert self.settings.video_input_bucket is not None  # _need() checked it
        video_id = videos.store_video(
            aws.client(self.settings, "s3"), self.settings.video_input_bucket, owner, name or None, extension, body
        )
        return {"video": video_id, "name": name or None, "csv": videos.csv_file_name(name, video_id), "status": "queued"}

    def list_videos(self, owner: str | None) -> dict[str, Any]:
        """``{"videos": [...], "truncated"}``: up to MAX_LISTED_VIDEOS videos, newest first, each
        with whether its CSV and its attendance report are written. ``owner``'s HTTP uploads, named
        by their ids; or, with ``owner`` None, every video in the input bucket named by its key
        (the operator's view: ``iraas videos list`` on the stack itself)."""
        self._need("video_input_bucket", "video_output_bucket")
        assert self.settings.video_input_bucket is not None and self.settings.video_output_bucket is not None
        found, truncated = videos.list_videos(
            aws.client(self.settings, "s3"), self.settings.video_input_bucket, self.settings.video_output_bucket, owner,
        )
        return {"videos": [asdict(v) for v in found], "truncated": truncated}

    def find_video(self, key: str) -> dict[str, Any]:
        """The operator's view of one video, by its key in the input bucket (as ``list_videos(None)``
        names it): ``{"video", "csv", "attendance"}``, the report None while it is not
        written. NotFound for no such video, and while its CSV is not written."""
        self._need("video_input_bucket", "video_output_bucket")
        assert self.settings.video_input_bucket is not None and self.settings.video_output_bucket is not None
        s3 = aws.client(self.settings, "s3")
        found, report = videos.find_outputs(s3, self.settings.video_input_bucket, self.settings.video_output_bucket, key)
        if found is None:
            if videos.video_exists(s3, self.settings.video_input_bucket, key):
                raise NotFound("not_found", f"no CSV for video {key!r} yet")
            raise NotFound("not_found", f"no video {key!r}")
        return {"video": key, "csv": found.text, "attendance": report}

    def find_attendance(self, owner: str, video_id: str) -> dict[str, Any]:
        """The whole lecture's attendance report of ``owner``'s video; NotFound for an id we never
        make, another caller's, and while the report is not written yet."""
        bucket = self._output_bucket(video_id)
        report = videos.find_attendance(aws.client(self.settings, "s3"), bucket, owner, video_id)
        if report is None:
            raise NotFound("not_found", f"no attendance for video {video_id!r} yet")
        return report

    def find_unknown_face(self, owner: str, video_id: str, index: int) -> bytes:
        """The crop (JPEG) of the ``index``-th unknown person in ``owner``'s video's report."""
        self._need("video_output_bucket")
        if not is_video_id(video_id) or not 0 <= index < MAX_UNKNOWN_FACES:
            raise NotFound("not_found", f"no unknown face {index!r} in video {video_id!r}")
        assert self.settings.video_output_bucket is not None
        crop = videos.find_unknown_face(
            aws.client(self.settings, "s3"), self.settings.video_output_bucket, owner, video_id, index
        )
        if crop is None:
            raise NotFound("not_found", f"no unknown face {index} in video {video_id!r}")
        return crop

    def _output_bucket(self, video_id: str) -> str:
        """The output bucket, once ``video_id`` is an id we could have made (NotFound otherwise)."""
        self._need("video_output_bucket")
        if not is_video_id(video_id):
            raise NotFound("not_found", f"no video with id {video_id!r}")
        assert self.settings.video_output_bucket is not None  # _need() checked it
        return self.settings.video_output_bucket

    def find_csv(self, owner: str, video_id: str) -> videos.FoundCsv:
        """The CSV of ``owner``'s video (by the id ``submit_video`` answered); NotFound for an id we
        never make and while there is none yet. Another caller's id is looked for under ``owner``:
        never found."""
        bucket = self._output_bucket(video_id)
        found = videos.find_csv(aws.client(self.settings, "s3"), bucket, owner, video_id)
        if found is None:
            raise NotFound("not_found", f"no CSV for video {video_id!r} yet")
        return found
