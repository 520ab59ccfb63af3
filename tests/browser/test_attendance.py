"""The whole lecture's attendance on the page, in headless Chromium against `iraas up`: given a 20 s
lecture where one student is there from the start, one walks in late, one never comes and a stranger
sits in for a while, the page shows a timeline of who was seen when, the absent student and the
stranger's face, which can be enrolled as a new student from the page.

One lecture, uploaded once through the page (the module's `lecture_page`); the tests read what it shows.
"""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest
from playwright.sync_api import expect

from harness.lectures import Appearance, make_lecture
from tests.browser.conftest import open_page

pytestmark = [pytest.mark.slow, pytest.mark.browser]

LECTURE_S = 20.0
ON_TIME = "Alex Lacamoire"
LATE = "Joe Biden"
ABSENT = "Kit Harington"
STRANGER = "Shea Whigham"  # never enrolled: an unknown face, until the page enrols them
ARRIVES_S = {ON_TIME: 0.0, LATE: 12.0}  # the truth: when each student comes in (both stay to the end)
STRANGER_S = (4.0, 11.0)
STUDENTS = [  # names of this module's own, or the same records test_page.py imports (Biden, Kit)
    {"id": "3001", "name": ON_TIME, "major": "Music", "year": "senior"},
    {"id": "1002", "name": LATE, "major": "History, Politics", "year": "4"},
    {"id": "1003", "name": ABSENT, "major": "Drama", "year": "junior"},
]
ENROLMENT_PHOTOS = {  # people/<identity>/<photo>: never the photo shown in the lecture
    ON_TIME: "alex_lacamoire/face_recognition-alex_lacamoire1.jpg",
    LATE: "biden/face_recognition-biden.jpg",
    ABSENT: "kit_harington/face_recognition-john1.jpeg",
}
REPORT_MS = 150_000  # upload, the first-frame CSV, then the whole lecture (a few seconds warm)
ENROL_MS = 90_000


def seconds(clock: str) -> int:
    """"1:05" -> 65 (the page's m:ss)."""
    minutes, secs = clock.split(":")
    return 60 * int(minutes) + int(secs)


@pytest.fixture(scope="module")
def lecture(faces_dir: Path, tmp_path_factory) -> Path:
    people = faces_dir / "people"
    folder = tmp_path_factory.mktemp("lecture")
    return make_lecture(folder / "lecture.mp4", [
        Appearance(people / "alex_lacamoire" / "face_recognition-img1.jpg", ARRIVES_S[ON_TIME], LECTURE_S, slot=0),
        Appearance(people / "biden" / "face_recognition-biden2.jpg", ARRIVES_S[LATE], LECTURE_S, slot=1),
        Appearance(people / "shea_whigham" / "facenet-pytorch-1.jpg", *STRANGER_S, slot=2),
    ], LECTURE_S, size=(1280, 720), fps=10)


@pytest.fixture(scope="module")
def lecture_page(browser, stack, faces_dir: Path, lecture: Path):
    """The page after uploading the lecture, with its attendance shown (three students enrolled first)."""
    records = stack.home / "attendance-students.json"
    records.write_text(json.dumps(STUDENTS))
    stack.cli("students", "import", str(records))
    for name, photo in ENROLMENT_PHOTOS.items():
        stack.cli("faces", "enroll", name, str(faces_dir / "people" / photo))

    with open_page(browser, stack.url + "/") as page:
        page.set_input_files("#video", str(lecture))
        page.click("#video-form button[type=submit]")
        page.locator("#video-result table").wait_for(timeout=REPORT_MS)  # the first frame's CSV first
        expect(page.locator("#attendance-status")).to_contain_text("Taking attendance")
        page.locator("#timeline").wait_for(timeout=REPORT_MS)
        yield page


def test_the_timeline_shows_who_came_when_who_never_came_and_one_unknown_face(lecture_page, stack, screenshot):
    page = lecture_page
    expect(page.locator("#attendance-status")).to_have_text(
        "Attendance taken: 2 students seen, 1 absent, 1 unknown face."
    )
    lanes = page.locator("#timeline li[data-name]")
    assert lanes.evaluate_all("lanes => lanes.map(l => l.dataset.name)") == [ON_TIME, LATE]
    for name, arrived in ARRIVES_S.items():
        lane = page.locator(f"#timeline li[data-name='{name}']")
        first = seconds(lane.locator(".first").inner_text())
        assert abs(first - arrived) <= 1, (name, first, arrived)
        # In words for a screen reader (and anyone): the span, first seen, time present, the status.
        spans = lane.locator(".spans").inner_text()
        assert re.fullmatch(r"Seen from 0:(\d\d) to 0:20", spans), spans
        assert abs(seconds(spans.split()[2]) - arrived) <= 1
        expect(lane.locator(".facts")).to_contain_text(" present (")
    expect(page.locator(f"#timeline li[data-name='{ON_TIME}'] .badge")).to_have_text("present")
    expect(page.locator(f"#timeline li[data-name='{LATE}'] .badge")).to_have_text("partial")  # 8 s of 20: under half

    # The bars are drawn where the spans are (their place set through the CSSOM, which the page's
    # content security policy allows; open_page fails the test on any policy violation).
    track = page.locator(f"#timeline li[data-name='{LATE}'] .track").bounding_box()
    bar = page.locator(f"#timeline li[data-name='{LATE}'] .bar").bounding_box()
    assert track and bar
    assert abs((bar["x"] - track["x"]) / track["width"] - ARRIVES_S[LATE] / LECTURE_S) <= 1.5 / LECTURE_S
    assert abs(bar["width"] / track["width"] - (LECTURE_S - ARRIVES_S[LATE]) / LECTURE_S) <= 1.5 / LECTURE_S
    ticks = page.locator("#attendance .axis .tick").all_inner_texts()
    assert ticks[0] == "0:00" and ticks[-1] == "0:20"

    absent = page.locator("#absent li").all_inner_texts()  # the roster is every enrolled student
    assert ABSENT in absent and ON_TIME not in absent and LATE not in absent

    # One unknown person: their lane, and their face (fetched with the key the page holds, shown from a blob: URL).
    expect(page.locator("#timeline li[data-unknown]")).to_have_count(1)
    unknown = page.locator("#timeline li[data-unknown] .spans").inner_text()
    assert abs(seconds(re.search(r"from (\d+:\d\d)", unknown).group(1)) - STRANGER_S[0]) <= 1, unknown
    faces = page.locator("#unknown-faces li")
    expect(faces).to_have_count(1)
    crop = faces.locator("img.crop")
    expect(crop).to_have_attribute("src", re.compile(r"^blob:"))
    assert crop.evaluate("img => img.complete && img.naturalWidth > 0 && img.naturalWidth <= 160")

    # The attendance CSV, built by the page from the report: the very file the face function wrote.
    with page.expect_download() as download:
        page.click("text=Download the attendance CSV")
    assert download.value.suggested_filename == "lecture.attendance.csv"
    text = Path(download.value.path()).read_text()
    rows = text.splitlines()
    assert rows[0] == "name,id,major,year,first_seen_s,last_seen_s,present_s,share,status"
    assert [row.split(",")[0] for row in rows[1:]] == [ON_TIME, LATE]
    assert rows[2].startswith(f'{LATE},1002,"History, Politics",4,12.0,')
    video_id = re.search(r"v1/videos/([0-9a-f]{32})/csv", page.locator("#video-result a").get_attribute("href")).group(1)
    s3, bucket = stack.client("s3"), stack.resources["VideoOutputBucket"]
    written = [o["Key"] for o in s3.list_objects_v2(Bucket=bucket)["Contents"] if o["Key"].endswith(f"{video_id}.attendance.csv")]
    assert len(written) == 1
    assert text == s3.get_object(Bucket=bucket, Key=written[0])["Body"].read().decode()

    page.locator("#attendance").scroll_into_view_if_needed()
    screenshot(page.locator("#attendance"), "classroom-attendance")

    # On a phone's width: nothing overflows, every control is labelled, the lanes stack.
    page.set_viewport_size({"width": 390, "height": 844})
    try:
        assert page.evaluate("document.documentElement.scrollWidth") <= 390
        unlabelled = page.evaluate(
            """[...document.querySelectorAll('#attendance input, #attendance button')]
                 .filter(e => !(e.labels && e.labels.length) && !e.getAttribute('aria-label') && !e.textContent.trim())
                 .map(e => e.outerHTML)"""
        )
        assert unlabelled == []
        screenshot(page.locator("#attendance"), "classroom-attendance-phone")
    finally:
        page.set_viewport_size({"width": 1280, "height": 900})


def test_an_unknown_face_is_enrolled_as_a_new_student_from_the_page(lecture_page):
    page = lecture_page
    card = page.locator("#unknown-faces li").first
    toggle = card.get_by_role("button", name="Enrol Unknown person 1 as a student")
    expect(toggle).to_have_attribute("aria-expanded", "false")

    # By keyboard: the button opens the form and puts the focus in its first field.
    toggle.focus()
    page.keyboard.press("Enter")
    expect(toggle).to_have_attribute("aria-expanded", "true")
    expect(card.get_by_label("Name")).to_be_focused()
    for label, value in [("Name", STRANGER), ("Student ID", "3002"), ("Major", "Film"), ("Year", "sophomore")]:
        card.get_by_label(label).fill(value)
    card.get_by_label("Year").press("Enter")

    expect(card.locator(".status")).to_have_text(
        f"Enrolled {STRANGER}: this face is theirs from the next video on.", timeout=ENROL_MS
    )
    expect(toggle).to_be_hidden()
    row = page.locator("#students tbody tr", has_text=STRANGER)
    expect(row.locator("td").nth(3)).to_have_text("1")  # the list was read again: one face
    assert row.locator("td").all_inner_texts()[:3] == ["3002", "Film", "sophomore"]


# ---- what the page does with the other reports the service writes (its answers stood in for) ----

VIDEO_ID = "0123456789abcdef0123456789abcdef"


def answer_as_the_service(page, report: dict, not_yet: int = 2) -> list[str]:
    """Route the page's video calls to stand-in answers: the upload, its CSV, ``not_yet`` 404s for
    the attendance and then ``report``. The paths the page asked for, in order."""
    asked: list[str] = []
    pending = {"left": not_yet}

    def answer(route) -> None:  # noqa: ANN001 - a Playwright Route
        path = route.request.url.split("/", 3)[3]
        asked.append(f"{route.request.method} {path}")
        if route.request.method == "POST":
            route.fulfill(status=202, json={"video": VIDEO_ID, "name": "long.mp4", "csv": "long.csv", "status": "queued"})
        elif path.endswith("/csv"):
            route.fulfill(status=200, content_type="text/csv", body="name,major,year\n")
        elif path.endswith("/attendance") and pending["left"]:
            pending["left"] -= 1
            route.fulfill(status=404, json={"error": {"code": "not_found", "message": "no attendance yet"}})
        elif path.endswith("/attendance"):
            route.fulfill(status=200, json=report)
        else:
            route.fulfill(status=404, json={"error": {"code": "not_found", "message": "no such face"}})

    page.route(re.compile(r".*/v1/videos.*"), answer)
    return asked


@pytest.fixture
def page(browser, stack):
    with open_page(browser, stack.url + "/") as page:
        yield page


def upload_stand_in(page, tmp_path: Path) -> None:
    video = tmp_path / "long.mp4"
    video.write_bytes(b"\x00\x00\x00\x18ftypmp42")  # never read: the service is stood in for
    page.set_input_files("#video", str(video))
    page.click("#video-form button[type=submit]")


def test_an_hour_long_lecture_with_a_missing_span_says_so_and_hatches_it(page, tmp_path, screenshot):
    report = {
        "video": "long.mp4", "duration_s": 3600.0, "sample_every_s": 1.0, "frames_sampled": 3540,
        "min_present_s": 300.0,
        "students": [{"name": "Ada Lovelace", "id": "1815", "major": "Mathematics", "year": "junior",
                      "first_seen_s": 65.0, "last_seen_s": 3599.0, "present_s": 3475.0, "share": 0.965,
                      "status": "present", "spans": [[65.0, 600.0], [660.0, 3600.0]]}],
        "unknown_faces": 0, "unknown": [], "absent": [], "missing_spans": [[600.0, 660.0]], "version": 1,
    }
    asked = answer_as_the_service(page, report)
    upload_stand_in(page, tmp_path)

    lane = page.locator("#timeline li[data-name='Ada Lovelace']")
    lane.wait_for(timeout=30_000)
    assert asked.count(f"GET v1/videos/{VIDEO_ID}/attendance") == 3  # two 404s, then the report
    expect(lane.locator(".first")).to_have_text("1:05")
    expect(lane.locator(".facts")).to_contain_text("58 min present (97%)")
    expect(lane.locator(".spans")).to_have_text("Seen from 1:05 to 10:00 and from 11:00 to 1:00:00")
    expect(page.locator("#attendance .note")).to_contain_text("could not be read (10:00 to 11:00")
    expect(lane.locator(".track .gap")).to_have_count(1)
    expect(lane.locator(".track .bar")).to_have_count(2)
    assert page.locator("#attendance .axis .tick").all_inner_texts()[-1] == "1:00:00"
    expect(page.locator("#attendance")).to_contain_text("Every enrolled student was seen.")
    expect(page.locator("#attendance")).to_contain_text("No unknown faces.")
    screenshot(page.locator("#attendance"), "classroom-attendance-gap")


def test_a_report_of_a_video_that_cannot_be_read_gives_its_reason(page, tmp_path):
    report = {"video": "long.mp4", "duration_s": 0.0, "sample_every_s": 1.0, "frames_sampled": 0,
              "min_present_s": 0.0, "students": [], "unknown_faces": 0, "unknown": [], "absent": [],
              "missing_spans": [], "version": 1,
              "error": {"code": "unreadable_video", "message": "the video could not be decoded"}}
    answer_as_the_service(page, report, not_yet=0)
    upload_stand_in(page, tmp_path)

    expect(page.locator("#attendance-status")).to_have_text(
        "Attendance could not be taken: the video could not be decoded", timeout=30_000
    )
    expect(page.locator("#timeline")).to_have_count(0)
