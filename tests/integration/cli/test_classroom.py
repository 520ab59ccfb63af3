"""`iraas students list|remove`, `iraas faces list`, `iraas videos list|show` (iraas/cli/classroom.py):
on template.yaml provisioned in moto, read from the stack itself and, with --url, through the
real web tier served over HTTP; and each one's mistakes, one line on stderr."""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest
from chalice.config import Config
from chalice.local import LocalDevServer, ThreadedHTTPServer

from harness.embedded import free_port
from iraas import aws
from iraas.classroom.attendance import Report, StudentAttendance
from iraas.classroom.keys import attendance_json_key, csv_key
from iraas.classroom.service import ClassroomService
from iraas.classroom.settings import load_face_settings
from iraas.classroom.student_store import student_store
from iraas.config import RESOURCE_ENV
from iraas.web.project import ProjectRequestHandler
from tests.support.cli import run

STUDENTS = [
    {"id": "1001", "name": "Barack Obama", "major": "Law", "year": "senior"},
    {"id": "1002", "name": "Joe Biden", "major": "History, Politics", "year": 4},
    {"id": "1003", "name": "Kit Harington", "major": "Drama", "year": "junior"},
]
CSV = 'name,major,year\nBarack Obama,Law,senior\nJoe Biden,"History, Politics",4\n'


def descriptor(n: int) -> bytes:
    """A stand-in for a 128-float descriptor: listing counts them and never shows them."""
    return bytes([n]) * 512


@pytest.fixture
def settings(stack):
    return load_face_settings()


@pytest.fixture
def enrolled(settings, tmp_path: Path, capsys) -> None:
    """The class imported as a user does it; Obama with two faces, Biden one, Kit none, and a
    face enrolled for someone with no record yet."""
    records = tmp_path / "students.json"
    records.write_text(json.dumps(STUDENTS))
    assert run(capsys, "students", "import", str(records))[0] == 0
    store = student_store(settings)
    store.add_faces("Barack Obama", [descriptor(1), descriptor(2)])
    store.add_faces("Joe Biden", [descriptor(3)])
    store.add_faces("Zoe Newcomer", [descriptor(4)])


def write_outputs(settings, key: str, report: bool = True) -> None:
    """What the face function writes for the video at ``key``: its CSV and, later, the attendance report."""
    s3 = aws.client(settings, "s3")
    s3.put_object(Bucket=settings.video_output_bucket, Key=csv_key(key), Body=CSV.encode())
    if report:
        attendance = Report(
            video=key, duration_s=600.0, sample_every_s=1.0, frames_sampled=600, min_present_s=300.0,
            students=[StudentAttendance("Barack Obama", "1001", "Law", "senior", 0.0, 599.0, 600.0, 1.0, "present",
                                        [(0.0, 600.0)]),
                      StudentAttendance("Joe Biden", "1002", "History, Politics", "4", 10.0, 129.0, 120.0, 0.2,
                                        "partial", [(10.0, 130.0)])],
            unknown_faces=1, unknown=[], absent=["Kit Harington"], missing_spans=[(300.0, 360.0)],
        )
        s3.put_object(Bucket=settings.video_output_bucket, Key=attendance_json_key(key),
                      Body=json.dumps(attendance.to_dict()).encode())


def lines(text: str) -> list[list[str]]:
    """A table's rows as lists of cells (cells are separated by two spaces or more)."""
    import re

    return [re.split(r"\s{2,}", line.strip()) for line in text.splitlines()]


# ---- students ---------------------------------------------------------------------------------


@pytest.mark.usefixtures("enrolled")
def test_students_list_shows_each_student_by_name_with_their_count_of_faces(capsys) -> None:
    code, out, err = run(capsys, "students", "list")
    assert (code, err) == (0, "")
    assert lines(out) == [
        ["name", "id", "major", "year", "faces"],
        ["Barack Obama", "1001", "Law", "senior", "2"],
        ["Joe Biden", "1002", "History, Politics", "4", "1"],
        ["Kit Harington", "1003", "Drama", "junior", "0"],
        ["Zoe Newcomer", "-", "-", "-", "1"],  # a face enrolled before the record
    ]

    code, out, _ = run(capsys, "students", "list", "--json")
    assert code == 0
    answer = json.loads(out)
    assert answer["truncated"] is False
    assert answer["students"][0] == {"id": "1001", "name": "Barack Obama", "major": "Law", "year": "senior", "faces": 2}
    assert [s["name"] for s in answer["students"]] == ["Barack Obama", "Joe Biden", "Kit Harington", "Zoe Newcomer"]


def test_students_list_of_an_empty_class_says_so(stack, capsys) -> None:
    assert run(capsys, "students", "list") == (0, "", "no students\n")
    code, out, _ = run(capsys, "students", "list", "--json")
    assert json.loads(out) == {"students": [], "truncated": False}


@pytest.mark.usefixtures("enrolled")
def test_students_remove_takes_the_record_and_the_faces(capsys, settings) -> None:
    assert run(capsys, "students", "remove", "Joe Biden") == (0, "removed Joe Biden and their enrolled faces\n", "")
    assert "Joe Biden" not in student_store(settings).faces()
    code, out, _ = run(capsys, "students", "remove", "--json", "Zoe Newcomer")
    assert (code, json.loads(out)) == (0, {"deleted": "Zoe Newcomer"})
    _, out, _ = run(capsys, "students", "list", "--json")
    assert [s["name"] for s in json.loads(out)["students"]] == ["Barack Obama", "Kit Harington"]


@pytest.mark.usefixtures("enrolled")
def test_removing_a_student_who_is_not_there_is_one_line(capsys) -> None:
    assert run(capsys, "students", "remove", "Nobody") == (1, "", "iraas students remove: no student named 'Nobody'\n")


# ---- faces ------------------------------------------------------------------------------------


@pytest.mark.usefixtures("enrolled")
def test_faces_list_shows_who_has_how_many_faces_never_the_descriptors(capsys) -> None:
    code, out, err = run(capsys, "faces", "list")
    assert (code, err) == (0, "")
    assert lines(out) == [["name", "faces"], ["Barack Obama", "2"], ["Joe Biden", "1"], ["Zoe Newcomer", "1"]]

    code, out, _ = run(capsys, "faces", "list", "--json")
    assert json.loads(out) == {
        "faces": [{"name": "Barack Obama", "faces": 2}, {"name": "Joe Biden", "faces": 1},
                  {"name": "Zoe Newcomer", "faces": 1}],
        "truncated": False,
    }
    assert "AQEB" not in out and "\\u0001" not in out  # no descriptor, in base64 or as text


def test_faces_list_with_nobody_enrolled_says_so(stack, capsys) -> None:
    assert run(capsys, "faces", "list") == (0, "", "nobody has faces enrolled\n")


# ---- videos -----------------------------------------------------------------------------------


@pytest.fixture
def videos(settings, tmp_path: Path, capsys) -> dict[str, str]:
    """Three videos: two submitted by the operator (one processed, with its report), one over HTTP."""
    (tmp_path / "monday.mp4").write_bytes(b"first lecture")
    (tmp_path / "tuesday.mp4").write_bytes(b"second lecture!")
    for name in ("monday.mp4", "tuesday.mp4"):
        assert run(capsys, "videos", "submit", str(tmp_path / name))[0] == 0
    write_outputs(settings, "monday.mp4")
    answer = ClassroomService(settings).submit_video("anonymous", "Room 1/wednesday.mp4", b"third", "video/mp4")
    write_outputs(settings, f"videos/anonymous/{answer['video']}.mp4", report=False)
    return {"http": answer["video"]}


def test_videos_list_shows_every_video_newest_first_and_what_is_written(capsys, videos) -> None:
    code, out, _ = run(capsys, "videos", "list", "--json")
    assert code == 0
    answer = json.loads(out)
    assert answer["truncated"] is False
    by_video = {v["video"]: v for v in answer["videos"]}
    http_key = f"videos/anonymous/{videos['http']}.mp4"
    assert set(by_video) == {"monday.mp4", "tuesday.mp4", http_key}
    assert by_video["monday.mp4"] == {
        "video": "monday.mp4", "name": None, "uploaded": by_video["monday.mp4"]["uploaded"], "bytes": 13,
        "csv": True, "attendance": True,
    }
    assert by_video["tuesday.mp4"]["csv"] is False and by_video["tuesday.mp4"]["attendance"] is False
    assert by_video[http_key]["name"] == "Room 1/wednesday.mp4" and by_video[http_key]["csv"] is True
    uploaded = [v["uploaded"] for v in answer["videos"]]
    assert uploaded == sorted(uploaded, reverse=True) and all(u.endswith("Z") for u in uploaded)

    code, out, err = run(capsys, "videos", "list")
    assert (code, err) == (0, "")
    rows = lines(out)
    assert rows[0] == ["video", "name", "uploaded", "bytes", "csv", "attendance"]
    monday = next(row for row in rows if row[0] == "monday.mp4")
    assert monday[1] == "-" and monday[3:] == ["13", "yes", "yes"]


def test_videos_list_with_no_videos_says_so(stack, capsys) -> None:
    assert run(capsys, "videos", "list") == (0, "", "no videos\n")


@pytest.mark.usefixtures("videos")
def test_videos_show_prints_the_csv_and_the_attendance_report(capsys) -> None:
    code, out, err = run(capsys, "videos", "show", "monday.mp4")
    assert (code, err) == (0, "")
    assert out.startswith("first frame (CSV):\n" + CSV + "\n")
    report = out.split(CSV + "\n", 1)[1].splitlines()
    assert report[0] == "attendance: a 600 s lecture, one frame every 1 s (600 sampled); present after 300 s"
    assert lines("\n".join(report[1:4])) == [
        ["name", "status", "first_seen_s", "last_seen_s", "present_s", "share"],
        ["Barack Obama", "present", "0", "599", "600", "100%"],
        ["Joe Biden", "partial", "10", "129", "120", "20%"],
    ]
    assert report[4:] == ["absent: Kit Harington", "unknown people: 1", "not observed: 300-360 s"]

    code, out, _ = run(capsys, "videos", "show", "--json", "monday.mp4")
    answer = json.loads(out)
    assert answer["video"] == "monday.mp4" and answer["csv"] == CSV
    assert answer["attendance"]["absent"] == ["Kit Harington"] and answer["attendance"]["unknown_faces"] == 1


def test_videos_show_of_a_video_without_its_report_yet_shows_the_csv(capsys, videos) -> None:
    key = f"videos/anonymous/{videos['http']}.mp4"
    code, out, _ = run(capsys, "videos", "show", key)
    assert code == 0
    assert out == "first frame (CSV):\n" + CSV + "\nattendance: not written (yet)\n"
    _, out, _ = run(capsys, "videos", "show", "--json", key)
    assert json.loads(out) == {"video": key, "csv": CSV, "attendance": None}


@pytest.mark.usefixtures("videos")
def test_videos_show_of_a_video_not_there_or_not_processed_yet_is_one_line(capsys) -> None:
    assert run(capsys, "videos", "show", "friday.mp4") == (1, "", "iraas videos show: no video 'friday.mp4'\n")
    assert run(capsys, "videos", "show", "tuesday.mp4") == (
        1, "", "iraas videos show: no CSV for video 'tuesday.mp4' yet\n"
    )
    assert run(capsys, "videos", "show", "monday.csv")[0] == 1  # not a video's key


# ---- mistakes: no stack, bad arguments ------------------------------------------------------


@pytest.fixture
def no_stack(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Path:
    for var in [*RESOURCE_ENV.values(), "IRAAS_ENDPOINT_URL", "IRAAS_DEBUG", "IRAAS_API_KEY"]:
        monkeypatch.delenv(var, raising=False)
    monkeypatch.setenv("IRAAS_HOME", str(tmp_path / "home"))
    return tmp_path / "home"


@pytest.mark.parametrize("argv", [
    ("students", "list"), ("students", "remove", "Joe Biden"), ("faces", "list"), ("videos", "list"),
    ("videos", "show", "monday.mp4"),
])
def test_with_no_stack_configured_each_command_says_what_to_set(capsys, no_stack: Path, argv) -> None:
    code, out, err = run(capsys, *argv)
    assert (code, out) == (2, "")
    (line,) = err.splitlines()
    assert line.startswith(f"iraas {argv[0]} {argv[1]}: configuration error: IRAAS_")
    assert "start one with `iraas up`" in line


@pytest.mark.parametrize("argv", [("students", "list"), ("faces", "list"), ("videos", "list")])
def test_a_stack_that_is_gone_is_one_line(capsys, no_stack: Path, argv) -> None:
    endpoint = f"http://127.0.0.1:{free_port()}"
    resources = {"VideoInputBucket": "in", "VideoOutputBucket": "out", "StudentsTable": "students"}
    no_stack.mkdir()
    (no_stack / "stack.json").write_text(json.dumps({"endpoint_url": endpoint, "region": "us-east-1",
                                                     "resources": resources}))
    code, _, err = run(capsys, *argv)
    assert code == 2
    (line,) = err.splitlines()
    assert line.startswith(f"iraas {argv[0]} {argv[1]}: the stack in {no_stack / 'stack.json'} does not answer")


@pytest.mark.parametrize("argv", [
    ("students", "remove"), ("videos", "show"), ("students", "list", "extra"), ("faces", "list", "--url", "ftp://x"),
    ("videos", "list", "--url", "http://host:99999"),
])
def test_bad_arguments_are_a_usage_error(capsys, argv) -> None:
    code, out, err = run(capsys, *argv)
    assert (code, out) == (2, "")
    # argparse names the command; an argument left over, at the top
    assert err.splitlines()[-1].startswith((f"iraas {argv[0]} {argv[1]}: error: ", "iraas: error: unrecognized"))


def test_no_service_at_the_url_is_one_line(capsys) -> None:
    url = f"http://127.0.0.1:{free_port()}"
    code, _, err = run(capsys, "students", "list", "--url", url)
    assert code == 2
    (line,) = err.splitlines()
    assert line.startswith(f"iraas students list: no IRaaS service at {url}: ")


# ---- --url: the same through the web tier -----------------------------------------------------


class _QuietHandler(ProjectRequestHandler):
    def log_message(self, *args: object) -> None:
        pass


@pytest.fixture
def web_url(web_app) -> Iterator[str]:
    """chalice_web/app.py served over HTTP as `iraas up` serves it (chalice's local gateway), on the moto stack."""
    app = web_app.app
    port = free_port()
    server = LocalDevServer(app, Config.create(app_name=app.app_name), "127.0.0.1", port,
                            handler_cls=_QuietHandler, server_cls=ThreadedHTTPServer)
    thread = threading.Thread(target=server.server.serve_forever, daemon=True)  # without its "Serving on" line
    thread.start()
    yield f"http://127.0.0.1:{port}"
    server.server.shutdown()
    server.server.server_close()


@pytest.mark.usefixtures("enrolled")
def test_students_and_faces_through_the_web_tier_are_what_the_stack_holds(capsys, web_url: str) -> None:
    for argv in (("students", "list"), ("faces", "list")):
        local = run(capsys, *argv, "--json")
        assert run(capsys, *argv, "--json", "--url", web_url) == local
        assert run(capsys, *argv, "--url", web_url) == run(capsys, *argv)

    assert run(capsys, "students", "remove", "Joe Biden", "--url", web_url) == (
        0, "removed Joe Biden and their enrolled faces\n", ""
    )
    assert run(capsys, "students", "remove", "Joe Biden", "--url", web_url) == (
        1, "", "iraas students remove: no student named 'Joe Biden'\n"
    )
    _, out, _ = run(capsys, "faces", "list", "--json", "--url", web_url)
    assert [f["name"] for f in json.loads(out)["faces"]] == ["Barack Obama", "Zoe Newcomer"]


def test_videos_through_the_web_tier_are_the_callers_own_by_id(capsys, web_url: str, videos) -> None:
    code, out, _ = run(capsys, "videos", "list", "--json", "--url", web_url)
    assert code == 0
    answer = json.loads(out)
    (video,) = answer["videos"]  # the operator's uploads are nobody's over HTTP
    assert video["video"] == videos["http"] and video["name"] == "Room 1/wednesday.mp4"
    assert video["csv"] is True and video["attendance"] is False and video["bytes"] == 5

    code, out, _ = run(capsys, "videos", "show", videos["http"], "--url", web_url)
    assert (code, out) == (0, "first frame (CSV):\n" + CSV + "\nattendance: not written (yet)\n")
    _, out, _ = run(capsys, "videos", "show", "--json", videos["http"], "--url", web_url)
    assert json.loads(out) == {"video": videos["http"], "csv": CSV, "attendance": None}

    unknown = "0" * 32
    assert run(capsys, "videos", "show", unknown, "--url", web_url) == (
        1, "", f"iraas videos show: no CSV for video '{unknown}' yet\n"
    )
    assert run(capsys, "videos", "show", "monday.mp4", "--url", web_url) == (
        1, "", "iraas videos show: no video with id 'monday.mp4'\n"
    )


def test_a_web_tier_that_wants_a_key_is_told_apart_from_a_missing_student(
    capsys, monkeypatch: pytest.MonkeyPatch, web_url: str, stack
) -> None:
    monkeypatch.setenv("IRAAS_API_KEY", "a-key-0123456789abcdef")
    assert run(capsys, "students", "list", "--url", web_url) == (0, "", "no students\n")  # the key is read now
    monkeypatch.delenv("IRAAS_API_KEY")  # the web tier keeps the key it read; the client has none
    code, _, err = run(capsys, "students", "list", "--url", web_url)
    assert code == 2
    assert err == f"iraas students list: {web_url} needs an API key: set IRAAS_API_KEY (the key is sent as x-api-key)\n"


def test_through_the_web_tier_each_caller_lists_their_own_videos_only(
    capsys, monkeypatch: pytest.MonkeyPatch, web_url: str, stack
) -> None:
    import urllib3

    alice, bob = "alice-key-0123456789abcdef", "bob-key-0123456789abcdef"
    monkeypatch.setenv("IRAAS_API_KEY", f"{alice},{bob}")  # the web tier takes both; the client sends the first
    for key, name in ((alice, "algebra.mp4"), (bob, "biology.mp4"), (alice, "art.mp4")):
        sent = urllib3.request("POST", f"{web_url}/v1/videos?name={name}", body=b"\0" * 16,
                               headers={"x-api-key": key, "Content-Type": "video/mp4"})
        assert sent.status == 202

    _, out, _ = run(capsys, "videos", "list", "--json", "--url", web_url)
    assert sorted(v["name"] for v in json.loads(out)["videos"]) == ["algebra.mp4", "art.mp4"]
    monkeypatch.setenv("IRAAS_API_KEY", f"{bob},{alice}")
    _, out, _ = run(capsys, "videos", "list", "--json", "--url", web_url)
    assert [v["name"] for v in json.loads(out)["videos"]] == ["biology.mp4"]
