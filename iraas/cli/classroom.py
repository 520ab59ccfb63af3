"""``iraas students|faces|videos ...``: enrolment, video submission, and what the classroom holds.

Registered by iraas/cli/main.py. Heavy modules (numpy, OpenCV, dlib) load only inside the commands
that need them.

The listing commands (``students list|remove``, ``faces list``, ``videos list|show``) read the
stack the settings name (``IRAAS_*``, else the running ``iraas up``), through the same use cases
the HTTP API serves (``iraas.classroom.service``); with ``--url`` they ask a web tier instead, as
its caller (the API key of ``IRAAS_API_KEY``). Each prints a table or text, or with ``--json``
the API's JSON.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

from iraas import aws
from iraas.classroom.settings import load_face_settings
from iraas.classroom.student_store import student_store
from iraas.cli.arguments import checked, positive_seconds
from iraas.errors import UsageError

if TYPE_CHECKING:
    from iraas.classroom.service import ClassroomService


def cmd_students_import(args: argparse.Namespace) -> int:
    from iraas.classroom.students import InvalidStudents, TooManyStudents, read_students_file

    settings = load_face_settings()
    try:
        records = read_students_file(args.file)
    except (OSError, InvalidStudents, TooManyStudents) as exc:
        print(f"iraas: {args.file}: {exc}", file=sys.stderr)
        return 1
    done = student_store(settings).put_students(records)
    print(f"imported {done.imported} students into {settings.students_table} "
          f"({done.new} new, {done.changed} changed, {done.unchanged} unchanged)")
    return 0


def cmd_faces_enroll(args: argparse.Namespace) -> int:
    from iraas.classroom.engines import engine_for
    from iraas.classroom.enrol import EnrolmentError, enrol_photos

    settings = load_face_settings()
    store = student_store(settings)
    try:
        count = enrol_photos(
            store, engine_for(settings), args.name, [Path(p) for p in args.photos], settings.photo_limits.max_image_pixels,
            settings.max_detect_pixels,
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


# ---- what the classroom holds: students, faces, videos -----------------------------------------


def _check_url(value: str) -> str:
    from iraas.cli.classify.remote import check_url

    return check_url(value)


web_url = checked(_check_url)


def _service(*resources: str) -> ClassroomService:
    """The classroom's use cases on the stack the settings name, once it answers."""
    from iraas.classroom.service import ClassroomService
    from iraas.cli.status import check_endpoint

    settings = load_face_settings().require(*resources)  # ConfigError: names the variable to set
    check_endpoint(settings.endpoint_url, str(settings.stack_file))
    return ClassroomService(settings)


def _students(args: argparse.Namespace) -> dict[str, Any]:
    """``{"students": [{"id", "name", "major", "year", "faces"}], "truncated"}``, sorted by name."""
    from iraas.cli import api_client

    if args.url:
        return api_client.call_json(args.url, "GET", "/v1/students")
    return _service("students_table").list_students()


def _print_json(value: Any) -> None:
    print(json.dumps(value, ensure_ascii=False, indent=2))


def table(header: tuple[str, ...], rows: list[tuple[Any, ...]]) -> list[str]:
    """A header and rows as lines, columns padded to their widest cell; None shows as ``-``."""
    cells = [header, *[tuple("-" if v is None else str(v) for v in row) for row in rows]]
    widths = [max(len(row[n]) for row in cells) for n in range(len(header) - 1)]
    return ["  ".join([*(c.ljust(w) for c, w in zip(row, widths, strict=False)), row[-1]]).rstrip() for row in cells]


def _print_table(header: tuple[str, ...], rows: list[tuple[Any, ...]]) -> None:
    for line in table(header, rows):
        print(line)


def _truncated(answer: dict[str, Any], what: str) -> None:
    if answer.get("truncated"):
        print(f"iraas: {len(answer[what])} {what} listed; there are more than one listing shows", file=sys.stderr)


def cmd_students_list(args: argparse.Namespace) -> int:
    return _print_listing(
        args, _students(args), "students", ("name", "id", "major", "year", "faces"),
        lambda s: (s["name"], s["id"] or None, s["major"] or None, s["year"] or None, s["faces"]),
    )


def cmd_students_remove(args: argparse.Namespace) -> int:
    from iraas.cli import api_client

    if args.url:
        answer = api_client.call_json(args.url, "DELETE", f"/v1/students/{api_client.path_segment(args.name)}")
    else:
        _service("students_table").delete_student(args.name)  # NotFound: no such student
        answer = {"deleted": args.name}
    if args.json:
        _print_json(answer)
    else:
        print(f"removed {args.name} and their enrolled faces")
    return 0


def cmd_faces_list(args: argparse.Namespace) -> int:
    """Who has faces enrolled, and how many: counts only, never the descriptors."""
    answer = _students(args)
    faces = [{"name": s["name"], "faces": s["faces"]} for s in answer["students"] if s["faces"]]
    if args.json:
        _print_json({"faces": faces, "truncated": answer["truncated"]})
        return 0
    if not faces:
        print("nobody has faces enrolled", file=sys.stderr)
    else:
        _print_table(("name", "faces"), [(f["name"], f["faces"]) for f in faces])
    if answer.get("truncated"):
        print("iraas: more students than one listing shows; only the first are counted", file=sys.stderr)
    return 0


def cmd_videos_list(args: argparse.Namespace) -> int:
    from iraas.cli import api_client

    if args.url:
        answer = api_client.call_json(args.url, "GET", "/v1/videos")
    else:
        answer = _service("video_input_bucket", "video_output_bucket").list_videos(None)
    yes_no = {True: "yes", False: "no"}
    return _print_listing(
        args, answer, "videos", ("video", "name", "uploaded", "bytes", "csv", "attendance"),
        lambda v: (v["video"], v["name"], v["uploaded"], v["bytes"], yes_no[bool(v["csv"])], yes_no[bool(v["attendance"])]),
    )


def _print_listing(
    args: argparse.Namespace, answer: dict[str, Any], key: str, columns: tuple[str, ...], row: Callable[[Any], tuple]
) -> int:
    """A listing answer as JSON (``--json``), or ``no <key>``, or a table of ``row(item)`` and a note
    when the service left some out."""
    if args.json:
        _print_json(answer)
        return 0
    items = answer[key]
    if not items:
        print(f"no {key}", file=sys.stderr)
        return 0
    _print_table(columns, [row(item) for item in items])
    _truncated(answer, key)
    return 0


def _video(args: argparse.Namespace) -> dict[str, Any]:
    """``{"video", "csv", "attendance"}`` of the video ``args.video``; NotFound while it has no CSV."""
    from iraas.cli import api_client
    from iraas.errors import NotFound

    if not args.url:
        return _service("video_input_bucket", "video_output_bucket").find_video(args.video)
    route = f"/v1/videos/{api_client.path_segment(args.video)}"
    csv = api_client.call(args.url, "GET", f"{route}/csv").data.decode()
    try:
        report: dict[str, Any] | None = api_client.call_json(args.url, "GET", f"{route}/attendance")
    except NotFound:  # not written yet, or never (a stack without a segment queue)
        report = None
    return {"video": args.video, "csv": csv, "attendance": report}


def cmd_videos_show(args: argparse.Namespace) -> int:
    found = _video(args)
    if args.json:
        _print_json(found)
        return 0
    print("first frame (CSV):")
    sys.stdout.write(found["csv"])
    print()
    for line in describe_attendance(found["attendance"]):
        print(line)
    return 0


def describe_attendance(report: dict[str, Any] | None) -> list[str]:
    """The attendance report as lines of text: who was there, when and how long; who never came."""
    if report is None:
        return ["attendance: not written (yet)"]
    error = report.get("error")
    if isinstance(error, dict):
        return [f"attendance: none: {error.get('message', '')}"]
    lines = [
        f"attendance: a {report['duration_s']:g} s lecture, one frame every {report['sample_every_s']:g} s "
        f"({report['frames_sampled']} sampled); present after {report['min_present_s']:g} s"
    ]
    students = report.get("students", [])
    if students:
        header = ("name", "status", "first_seen_s", "last_seen_s", "present_s", "share")
        lines += table(header, [(s["name"], s["status"], f"{s['first_seen_s']:g}", f"{s['last_seen_s']:g}",
                                 f"{s['present_s']:g}", f"{s['share']:.0%}") for s in students])
    else:
        lines.append("nobody enrolled was seen")
    lines.append(f"absent: {', '.join(report.get('absent', [])) or 'nobody'}")
    lines.append(f"unknown people: {report.get('unknown_faces', 0)}")
    missing = report.get("missing_spans") or []
    if missing:
        lines.append("not observed: " + ", ".join(f"{a:g}-{b:g} s" for a, b in missing))
    return lines


def _group(sub: Any, name: str, help: str) -> Any:
    """``iraas <name> ...``: a command whose subcommands are required."""
    return sub.add_parser(name, help=help).add_subparsers(dest=f"{name}_command", required=True)


def add_commands(sub: Any) -> None:
    """Register the classroom commands on ``iraas``'s subparsers."""
    students = _group(sub, "students", "student records of the classroom face pipeline")
    c = students.add_parser("import", help='import a JSON list of {"id", "name", "major", "year"}')
    c.add_argument("file", help="the JSON file of student records")
    c.set_defaults(func=cmd_students_import)
    c = students.add_parser("list", help="the students by name, each with how many faces are enrolled")
    _listing_options(c)
    c.set_defaults(func=cmd_students_list)
    c = students.add_parser("remove", help="remove a student's record and enrolled faces")
    c.add_argument("name", help="the student's name, as `iraas students list` shows it")
    _listing_options(c)
    c.set_defaults(func=cmd_students_remove)

    faces = _group(sub, "faces", "enrol the faces the pipeline recognises")
    c = faces.add_parser("enroll", help="store the face descriptors of one person from photos")
    c.add_argument("name", help="the student's name, as in the student records")
    c.add_argument("photos", nargs="+", metavar="PHOTO", help="photos showing exactly this one face")
    c.set_defaults(func=cmd_faces_enroll)
    c = faces.add_parser("import-encodings", help="import a face_recognition encoding file (pickle, JSON or npz)")
    c.add_argument("file", help="the encoding file")
    c.set_defaults(func=cmd_faces_import)
    c = faces.add_parser("list", help="who has faces enrolled, and how many (never the descriptors)")
    _listing_options(c)
    c.set_defaults(func=cmd_faces_list)

    videos = _group(sub, "videos", "classroom videos")
    c = videos.add_parser("submit", help="upload a video; with --wait, print its CSV when it appears")
    c.add_argument("file", help="the video file (mp4, mov, avi)")
    c.add_argument("--name", help="name to store it under (default: the file's name)")
    c.add_argument("--wait", type=positive_seconds, nargs="?", const=120.0, metavar="SECONDS",
                   help="wait up to SECONDS for the CSV and print it (default: don't wait; --wait alone: 120)")
    c.set_defaults(func=cmd_videos_submit)
    c = videos.add_parser("list", help="the videos, newest first, and whether each one's CSV and attendance are written",
                          description="On the stack itself: every video in the input bucket, named by its key. "
                          "With --url: the videos the API key's caller uploaded, named by their ids.")
    _listing_options(c)
    c.set_defaults(func=cmd_videos_list)
    c = videos.add_parser("show", help="a video's CSV and its whole lecture's attendance report")
    c.add_argument("video", help="the video as `iraas videos list` names it: its key on the stack itself "
                   "(the name `iraas videos submit` stored it under), its id with --url")
    _listing_options(c)
    c.set_defaults(func=cmd_videos_show)


def _listing_options(parser: Any) -> None:
    parser.add_argument("--json", action="store_true", help="print the API's JSON instead of a table")
    parser.add_argument("--url", type=web_url, help="ask the web tier at URL, with the API key of IRAAS_API_KEY "
                        "(default: the stack the IRAAS_* settings or the running `iraas up` name)")
