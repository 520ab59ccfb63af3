"""``iraas students|faces|videos ...``: enrolment and video submission for the face pipeline.

Registered by iraas/cli/main.py. Heavy modules (numpy, OpenCV, dlib) load only inside the commands
that need them.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path
from typing import Any

from iraas import aws
from iraas.classroom.settings import load_face_settings
from iraas.classroom.student_store import student_store
from iraas.cli.arguments import positive_seconds
from iraas.errors import UsageError


def cmd_students_import(args: argparse.Namespace) -> int:
    from iraas.classroom.students import InvalidStudents, TooManyStudents, read_students_file

    settings = load_face_settings()
    try:
        records = read_students_file(args.file)
    except (OSError, InvalidStudents, TooManyStudents) as exc:
        print(f"iraas: {args.file}: {exc}", file=sys.stderr)
        return 1
    count = student_store(settings).put_students(records)
    print(f"imported {count} students into {settings.students_table}")
    return 0


def cmd_faces_enroll(args: argparse.Namespace) -> int:
    from iraas.classroom.engines import engine_for
    from iraas.classroom.enrol import EnrolmentError, enrol_photos

    settings = load_face_settings()
    store = student_store(settings)
    try:
        count = enrol_photos(
            store, engine_for(settings), args.name, [Path(p) for p in args.photos], settings.photo_limits.max_image_pixels
        )
    except EnrolmentError as exc:
        print(f"iraas: {exc}", file=sys.stderr)
        return 1
    print(f"enrolled {count} face(s) of {args.name}")
    return 0


def cmd_faces_import(args: argparse.Namespace) -> int:
    from iraas.classroom.encodings import InvalidEncodings
    from iraas.classroom.engines import ENGINES
    from iraas.classroom.enrol import import_encodings

    settings = load_face_settings()
    try:
        counts = import_encodings(student_store(settings), Path(args.file), ENGINES[settings.engine].descriptor_size)
    except (OSError, InvalidEncodings) as exc:
        print(f"iraas: {args.file}: {exc}", file=sys.stderr)
        return 1
    for name, count in counts.items():
        print(f"{name}\t{count}")
    print(f"imported {sum(counts.values())} encodings of {len(counts)} people", file=sys.stderr)
    return 0


def cmd_videos_submit(args: argparse.Namespace) -> int:
    from iraas.classroom.keys import csv_key, upload_key

    path = Path(args.file)
    if not path.is_file():  # before the settings: the likelier mistake is named first
        reason = "is a folder, not a video file" if path.is_dir() else "no such file"
        raise UsageError(f"{args.file}: {reason}")
    settings = load_face_settings().require("video_input_bucket", "video_output_bucket")
    try:
        key = upload_key(args.name or path.name)
    except ValueError as exc:
        print(f"iraas: {exc}", file=sys.stderr)
        return 1
    s3 = aws.client(settings, "s3")
    s3.upload_file(str(path), settings.video_input_bucket, key)
    uploaded = s3.head_object(Bucket=settings.video_input_bucket, Key=key)["LastModified"]
    target = csv_key(key)
    print(f"uploaded s3://{settings.video_input_bucket}/{key}; the CSV will be s3://{settings.video_output_bucket}/{target}",
          file=sys.stderr)
    if args.wait is None:
        return 0
    deadline = time.monotonic() + args.wait
    while time.monotonic() < deadline:
        try:
            head = s3.head_object(Bucket=settings.video_output_bucket, Key=target)
        except Exception as exc:
            if not aws.is_not_found(exc):
                raise
            head = None
        # A CSV from an earlier upload of the same name is older than this upload.
        if head is not None and head["LastModified"] >= uploaded:
            body = s3.get_object(Bucket=settings.video_output_bucket, Key=target)["Body"].read()
            sys.stdout.write(body.decode())
            return 0
        time.sleep(0.5)
    print(f"iraas: no CSV at {target} within {args.wait:g} s", file=sys.stderr)
    return 1


def _group(sub: Any, name: str, help: str) -> Any:
    """``iraas <name> ...``: a command whose subcommands are required."""
    return sub.add_parser(name, help=help).add_subparsers(dest=f"{name}_command", required=True)


def add_commands(sub: Any) -> None:
    """Register the classroom commands on ``iraas``'s subparsers."""
    students = _group(sub, "students", "student records of the classroom face pipeline")
    c = students.add_parser("import", help='import a JSON list of {"id", "name", "major", "year"}')
    c.add_argument("file", help="the JSON file of student records")
    c.set_defaults(func=cmd_students_import)

    faces = _group(sub, "faces", "enrol the faces the pipeline recognises")
    c = faces.add_parser("enroll", help="store the face descriptors of one person from photos")
    c.add_argument("name", help="the student's name, as in the student records")
    c.add_argument("photos", nargs="+", metavar="PHOTO", help="photos showing exactly this one face")
    c.set_defaults(func=cmd_faces_enroll)
    c = faces.add_parser("import-encodings", help="import a face_recognition encoding file (pickle, JSON or npz)")
    c.add_argument("file", help="the encoding file")
    c.set_defaults(func=cmd_faces_import)

    videos = _group(sub, "videos", "classroom videos")
    c = videos.add_parser("submit", help="upload a video; with --wait, print its CSV when it appears")
    c.add_argument("file", help="the video file (mp4, mov, avi)")
    c.add_argument("--name", help="name to store it under (default: the file's name)")
    c.add_argument("--wait", type=positive_seconds, nargs="?", const=120.0, metavar="SECONDS",
                   help="wait up to SECONDS for the CSV and print it (default: don't wait; --wait alone: 120)")
    c.set_defaults(func=cmd_videos_submit)
