"""iraas/classroom/keys.py: the face pipeline's keys are of the service's making. A video's CSV sits
beside it and never climbs; an uploaded video is in its owner's folder under an id of the service's
making, with an extension from the user's name or the content type; enrolment photos and outcomes
have keys no video can take."""

from __future__ import annotations

import pytest

from iraas.classroom.keys import (
    csv_key,
    enrolment_id_of,
    enrolment_outcome_key,
    enrolment_photo_key,
    is_enrolment_key,
    is_video_key,
    new_enrolment_id,
    new_video_id,
    owned_csv_key,
    owned_video_key,
    upload_key,
    video_extension,
)


@pytest.mark.parametrize("key, expected", [
    ("lecture.mp4", "lecture.csv"),
    ("Room 101/monday lecture.MOV", "Room 101/monday lecture.csv"),
    ("a.b.avi", "a.b.csv"),
    ("../../etc/x.mp4", "etc/x.csv"),
    ("/./x.mp4", "x.csv"),
])
def test_the_csv_key_is_the_video_key_with_csv_and_never_climbs(key, expected):
    assert csv_key(key) == expected


def test_only_mp4_mov_and_avi_are_videos():
    assert [k for k in ["a.mp4", "b.MOV", "c.avi", "d.mkv", "e.csv", "mp4"] if is_video_key(k)] == ["a.mp4", "b.MOV", "c.avi"]


def test_an_uploaded_name_is_reduced_to_a_safe_file_name():
    assert upload_key("../../x/Room 7.mp4") == "Room_7.mp4"
    with pytest.raises(ValueError, match="not a video"):
        upload_key("payload.sh")


def test_enrolment_photos_and_outcomes_have_keys_of_the_servers_making_that_no_video_can_take():
    enrolment = new_enrolment_id()
    assert enrolment != new_enrolment_id() and len(enrolment) == 32
    assert enrolment_photo_key(enrolment, "JPEG") == f"enrolments/{enrolment}.jpg"
    assert enrolment_photo_key(enrolment, "PNG") == f"enrolments/{enrolment}.png"
    assert enrolment_outcome_key(enrolment) == f"enrolments/{enrolment}.json"
    assert enrolment_id_of(f"enrolments/{enrolment}.webp") == enrolment
    for other in (f"enrolments/{enrolment}", f"enrolments/{enrolment}.jpg/x", f"x/enrolments/{enrolment}.jpg",
                  "enrolments/notes.txt", f"./enrolments/{enrolment}.jpg"):
        assert enrolment_id_of(other) is None, other
    with pytest.raises(ValueError):
        enrolment_outcome_key("../../status/fleet")
    # The two pipelines never take each other's objects: no uploaded video lands in enrolments/,
    # and a video put there directly is not one (its CSV would be enrolments/x.csv, never an outcome).
    assert upload_key("enrolments/x.mp4") == "x.mp4"
    assert [k for k in ("enrolments/x.mp4", "./enrolments/x.mp4", "x.mp4", "Room/enrolments/x.mp4") if is_video_key(k)] == [
        "x.mp4", "Room/enrolments/x.mp4",
    ]
    assert is_enrolment_key("./enrolments//a.jpg") and not is_enrolment_key("enrolments.mp4")


def test_an_uploaded_video_is_in_its_owners_folder_under_an_id_of_the_services_making():
    video = new_video_id()
    assert video != new_video_id() and len(video) == 32
    key = owned_video_key("k0123456789abcdef", video, ".mov")
    assert key == f"videos/k0123456789abcdef/{video}.mov"
    assert is_video_key(key) and not is_enrolment_key(key)
    assert csv_key(key) == owned_csv_key("k0123456789abcdef", video)  # what the face function writes
    assert owned_csv_key("anonymous", video) != owned_csv_key("kffff", video)


@pytest.mark.parametrize(("owner", "video"), [
    ("../x", "0" * 32), ("", "0" * 32), ("a/b", "0" * 32), ("k" * 66, "0" * 32),
    ("kabc", "../../x"), ("kabc", "0" * 31), ("kabc", "G" * 32),
])
def test_neither_the_owner_nor_the_id_can_steer_a_key(owner, video):
    with pytest.raises(ValueError):
        owned_video_key(owner, video, ".mp4")
    with pytest.raises(ValueError):
        owned_csv_key(owner, video)


def test_the_extension_comes_from_the_users_name_else_from_the_content_type():
    assert video_extension("Room 101/Lecture.MP4") == ".mp4"
    assert video_extension(None, "video/quicktime") == ".mov"
    assert video_extension("", "video/x-msvideo; foo=bar") == ".avi"
    for name, mime in (("payload.sh", "video/mp4"), (None, "application/octet-stream"), (None, None), ("mp4", None)):
        with pytest.raises(ValueError):
            video_extension(name, mime)
