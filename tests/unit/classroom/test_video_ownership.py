"""Videos uploaded over HTTP are their caller's: keys of the service's making, the user's name kept
in metadata and in the CSV's file name (no AWS, no engine)."""

from __future__ import annotations

import pytest

from iraas.classroom.keys import (
    csv_key,
    is_enrolment_key,
    is_video_key,
    new_video_id,
    owned_csv_key,
    owned_video_key,
    video_extension,
)
from iraas.classroom.videos import content_disposition, csv_file_name, name_metadata, name_metadata_of, name_of


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


@pytest.mark.parametrize("name", ["lecture.mp4", "Room 101/two people.mp4", "Zoë Ångström.mov", "a\n\"b\".avi"])
def test_the_users_name_travels_in_ascii_metadata_and_onto_the_csv(name):
    metadata = name_metadata(name)
    assert metadata[next(iter(metadata))].isascii()
    assert name_of(metadata) == name
    assert name_metadata_of(metadata) == metadata
    assert name_metadata_of({}) == {} and name_of({"name": "!!not base64"}) is None


def test_the_csv_is_downloaded_under_the_stem_of_the_users_name():
    video = "0" * 32
    assert csv_file_name("lecture.mp4", video) == "lecture.csv"
    assert csv_file_name("Room 101/two people.mp4", video) == "two people.csv"
    assert csv_file_name("C:\\clips\\a.b.avi", video) == "a.b.csv"
    assert csv_file_name(None, video) == f"{video}.csv"
    assert content_disposition("lecture.csv") == 'attachment; filename="lecture.csv"'
    assert content_disposition('Zoë "x".csv') == (
        "attachment; filename=\"Zo_ _x_.csv\"; filename*=UTF-8''Zo%C3%AB%20%22x%22.csv"
    )
