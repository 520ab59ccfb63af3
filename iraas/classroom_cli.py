"""``iraas students|faces|videos ...``: enrolment and video submission for the face pipeline.

Registered by iraas/cli.py. Heavy modules (numpy, OpenCV, dlib) load only inside the commands
that need them.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path
from typing import Any

from iraas import aws
from iraas.config import FaceSettings, load_face_settings


def _store(settings: FaceSettings) -> Any:
    from iraas.students import StudentStore

    settings.require("students_table")
    return StudentStore(aws.client(settings, "dynamodb"), settings.students_table)


def cmd_students_import(args: argparse.Namespace) -> int:
    from iraas.students import InvalidStudents, parse_students_json

    settings = load_face_settings()
    try:
        records = parse_students_json(Path(args.file).read_bytes())
    except (OSError, InvalidStudents) as exc:
        print(f"iraas: {args.file}: {exc}", file=sys.stderr)
        return 1
    count = _store(settings).put_students(records)
    print(f"imported {count} students into {settings.students_table}")
    return 0


def cmd_faces_enroll(args: argparse.Namespace) -> int:
    from iraas.faces.enrol import EnrolmentError, enrol_photos
    from iraas.faces.engine import load_engine

    settings = load_face_settings()
    store = _store(settings)
    try:
        count = enrol_photos(store, load_engine(settings.engine, settings.facenet_weights), args.name,
                             [Path(p) for p in args.photos])
    except EnrolmentError as exc:
        print(f"iraas: {exc}", file=sys.stderr)
        return 1
    print(f"enrolled {count} face(s) of {args.name}")
    return 0


def cmd_faces_import(args: argparse.Namespace) -> int:
    from iraas.faces.encodings import InvalidEncodings
    from iraas.faces.enrol import import_encodings

    settings = load_face_settings()
    try:
        counts = import_encodings(_store(settings), Path(args.file))
    except (OSError, InvalidEncodings) as exc:
        print(f"iraas: {args.file}: {exc}", file=sys.stderr)
        return 1
    for name, count in counts.items():
        print(f"{name}\t{count}")
    print(f"imported {sum(counts.values())} encodings of {len(counts)} people", file=sys.stderr)
    return 0


def cmd_videos_submit(args: argparse.Namespace) -> int:
    from iraas.faces.keys import csv_key, upload_key

    settings = load_face_settings().require("video_input_bucket", "video_output_bucket")
    path = Path(args.file)
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
        except s3.exceptions.ClientError:
            head = None
        # A CSV from an earlier upload of the same name is older than this upload.
        if head is not None and head["LastModified"] >= uploaded:
            body = s3.get_object(Bucket=settings.video_output_bucket, Key=target)["Body"].read()
            sys.stdout.write(body.decode())
            return 0
        time.sleep(0.5)
    print(f"iraas: no CSV at {target} within {args.wait:g} s", file=sys.stderr)
    return 1


def add_commands(sub: Any) -> None:
    """Register the classroom commands on ``iraas``'s subparsers."""
    p = sub.add_parser("students", help="student records of the classroom face pipeline")
    ssub = p.add_subparsers(dest="students_command", required=True)
    c = ssub.add_parser("import", help='import a JSON list of {"id", "name", "major", "year"}')
    c.add_argument("file")
    c.set_defaults(func=cmd_students_import)

    p = sub.add_parser("faces", help="enrol the faces the pipeline recognises")
    fsub = p.add_subparsers(dest="faces_command", required=True)
    c = fsub.add_parser("enroll", help="store the face descriptors of one person from photos")
    c.add_argument("name", help="the student's name, as in the student records")
    c.add_argument("photos", nargs="+", metavar="PHOTO", help="photos showing exactly this one face")
    c.set_defaults(func=cmd_faces_enroll)
    c = fsub.add_parser("import-encodings", help="import a face_recognition encoding file (pickle, JSON or npz)")
    c.add_argument("file")
    c.set_defaults(func=cmd_faces_import)

    p = sub.add_parser("videos", help="classroom videos")
    vsub = p.add_subparsers(dest="videos_command", required=True)
    c = vsub.add_parser("submit", help="upload a video; with --wait, print its CSV when it appears")
    c.add_argument("file")
    c.add_argument("--name", help="name to store it under (default: the file's name)")
    c.add_argument("--wait", type=float, nargs="?", const=120.0, metavar="SECONDS",
                   help="wait for the CSV and print it (default 120 s)")
    c.set_defaults(func=cmd_videos_submit)
