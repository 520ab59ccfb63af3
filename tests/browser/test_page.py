"""The web page in headless Chromium against `iraas up`: what a user sees, state by state.

Each test writes a screenshot of the state it checks to build/screenshots/ (docs/api.md shows them, from docs/screenshots/).
"""

from __future__ import annotations

import json
import re
import threading

import pytest
import requests
from playwright.sync_api import expect

from tests.browser.conftest import open_page

pytestmark = [pytest.mark.slow, pytest.mark.browser]

DONE_S = 90_000  # ms: a cold worker loads its model first; the face function its engine
# `stack`: the session's `iraas up` (tests/browser/conftest.py), shared with test_attendance.py.


@pytest.fixture
def page(browser, stack):
    with open_page(browser, stack.url + "/") as page:
        yield page


def test_the_page_is_served_with_a_content_security_policy(stack):
    response = requests.get(stack.url + "/", timeout=10)
    assert response.status_code == 200
    assert response.headers["Content-Type"].startswith("text/html")
    policy = response.headers["Content-Security-Policy"]
    assert "script-src 'self'" in policy and "default-src 'none'" in policy
    assert "<script>" not in response.text  # every script is a file the policy allows


def test_classify_an_image_shows_its_label_and_top5(page, photo, classifier, screenshot):
    expected = classifier.classify_bytes([photo.path.read_bytes()])[0].best.label

    page.set_input_files("#images", str(photo.path))

    card = page.locator(".card").first
    page.wait_for_selector(".card[data-state='done']", timeout=DONE_S)
    assert card.locator(".name").inner_text() == photo.path.name
    assert card.locator(".state").inner_text().startswith(expected)
    rows = card.locator(".top5 li")
    assert rows.count() == 5
    assert rows.first.get_attribute("aria-label").startswith(f"{expected}:")
    screenshot(page.locator("#classify"), "classify-label")


def test_a_text_file_gets_an_error_beside_it(page, tmp_path, screenshot):
    notes = tmp_path / "notes.txt"
    notes.write_text("not a photo\n")

    page.set_input_files("#images", str(notes))

    card = page.locator(".card[data-state='error']")
    card.wait_for(timeout=30_000)
    assert card.locator(".name").inner_text() == "notes.txt"
    assert "not an image" in card.locator(".state").inner_text()
    assert card.get_attribute("role") == "alert"
    screenshot(page.locator("#classify"), "classify-error")


def add_student(page, name: str, student_id: str, major: str, year: str):  # noqa: ANN201 - a Locator
    """Fill in and send the add-student form; the new row of the students table."""
    for field, value in [("name", name), ("id", student_id), ("major", major), ("year", year)]:
        page.fill(f"#student-{field}", value)
    page.click("#student-form button[type=submit]")
    row = page.locator("#students tbody tr", has_text=name)
    row.wait_for(timeout=10_000)
    return row


def test_add_a_student_and_enrol_their_face_from_a_photo(page, faces_dir, screenshot):
    row = add_student(page, "Rose Leslie", "2001", "Drama", "junior")
    expect(page.locator("#students-status")).to_have_text("Added Rose Leslie.")
    assert row.locator("td").all_inner_texts()[:4] == ["2001", "Drama", "junior", "0"]

    # Through the face function (the web tier never runs the face engine), then the list again.
    row.locator("input[type=file]").set_input_files(str(faces_dir / "people" / "rose_leslie" / "face_recognition-img1.jpg"))
    expect(page.locator("#students-status")).to_contain_text("Enrolled a face of Rose Leslie", timeout=DONE_S)
    expect(row.locator("td").nth(3)).to_have_text("1")
    screenshot(page.locator("#classroom"), "classroom-student-added")


def test_a_photo_without_a_face_is_not_enrolled_and_says_why(page, tmp_path, photo):
    row = add_student(page, "Nobody Here", "2002", "None", "1")

    row.locator("input[type=file]").set_input_files(str(photo.path))  # a tench: no face at all

    expect(page.locator("#students-status")).to_contain_text("not enrolled", timeout=DONE_S)
    expect(page.locator("#students-status")).to_contain_text("face")
    expect(row.locator("td").nth(3)).to_have_text("0")


def test_upload_a_video_and_see_the_students(page, stack, classroom, screenshot):
    students = stack.home / "students.json"
    students.write_text(json.dumps(classroom.students))
    stack.cli("students", "import", str(students))
    for name, photos in classroom.enrolled.items():
        stack.cli("faces", "enroll", name, *map(str, photos))

    page.set_input_files("#video", str(classroom.videos["two"]))
    page.click("#video-form button[type=submit]")

    table = page.locator("#video-result table")
    table.wait_for(timeout=DONE_S)
    names = table.locator("tbody tr td:first-child").all_inner_texts()
    assert names == ["Barack Obama", "Joe Biden"]
    assert "2 students recognised" in page.locator("#video-status").inner_text()
    link = page.locator("#video-result a", has_text="Download the CSV")
    assert re.fullmatch(r"v1/videos/[0-9a-f]{32}/csv", link.get_attribute("href"))  # an id of the service's
    assert link.get_attribute("download") == f"{classroom.videos['two'].stem}.csv"  # the user's name
    screenshot(page.locator("#classroom"), "classroom-video")


def test_the_dashboard_shows_the_workers_rise_during_a_burst(page, stack, imagenet_sample, screenshot):
    tile = page.locator("#tile-workers")
    expect(tile).to_contain_text("running")  # the first reading is in
    photos = [p.path.read_bytes() for p in imagenet_sample[:40]]

    def send(i: int) -> None:
        files = {"myfile": (f"burst-{i}.jpg", photos[i % len(photos)], "image/jpeg")}
        requests.post(stack.url + "/v1/images?wait=0", files=files, timeout=60).raise_for_status()

    burst = [threading.Thread(target=send, args=(i,)) for i in range(80)]
    for thread in burst:
        thread.start()
    expect(tile).to_have_text(re.compile(r"^[1-9][0-9]* running"), timeout=60_000)
    for thread in burst:
        thread.join()
    running = int(re.match(r"(\d+) running", tile.inner_text()).group(1))
    assert running >= 1
    # Let the burst drain, so that the picture shows the queue rise and fall.
    expect(page.locator("#tile-queued")).to_have_text("0", timeout=120_000)
    expect(page.locator("#tile-in-flight")).to_have_text("0", timeout=120_000)
    # The workers' own figures: images answered per second and their latency, over the last minute.
    expect(page.locator("#tile-rate")).not_to_have_text(re.compile(r"^(–|0\.0)$"), timeout=30_000)
    expect(page.locator("#tile-latency")).to_have_text(re.compile(r"^[0-9.]+ s / [0-9.]+ s$"))
    page.wait_for_timeout(3_000)
    page.locator("#dashboard").scroll_into_view_if_needed()
    screenshot(page.locator("#dashboard"), "dashboard-burst")


def test_on_a_phone_sized_screen_nothing_overflows_and_every_control_is_labelled(browser, stack, screenshot):
    context = browser.new_context(viewport={"width": 390, "height": 844}, device_scale_factor=2)
    page = context.new_page()
    page.goto(stack.url + "/")
    width = page.evaluate("document.documentElement.scrollWidth")
    unlabelled = page.evaluate(
        """[...document.querySelectorAll('input, button, select, textarea')]
             .filter(e => !(e.labels && e.labels.length) && !e.getAttribute('aria-label') && !e.textContent.trim())
             .map(e => e.outerHTML)"""
    )
    screenshot(page, "phone")
    page.keyboard.press("Tab")  # the keyboard's first stop is the skip link
    skip = page.evaluate("document.activeElement.textContent")
    stops = []  # then the navigation, then the image picker
    for _ in range(6):
        page.keyboard.press("Tab")
        stops.append(page.evaluate("document.activeElement.id || document.activeElement.textContent"))
    context.close()

    assert width <= 390
    assert unlabelled == []
    assert skip == "Skip to content"
    assert stops[:4] == ["Classify", "Classroom", "Dashboard", "images"]


def test_unknown_routes_and_methods_answer_the_project_json_error(stack):
    missing = requests.get(stack.url + "/nope/deeper", timeout=10)
    assert missing.status_code == 404
    assert missing.json()["error"]["code"] == "not_found"
    wrong = requests.delete(stack.url + "/v1/stats", timeout=10)
    assert wrong.status_code == 405
    assert wrong.json()["error"]["code"] == "method_not_allowed"
    assert wrong.headers["Allow"] == "GET"
