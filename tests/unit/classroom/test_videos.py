"""iraas/classroom/videos.py: a video uploaded over HTTP keeps its user's name, in ASCII metadata and
in the file name its CSV is downloaded under (no AWS, no engine)."""

from __future__ import annotations

import pytest

from iraas.classroom.videos import content_disposition, csv_file_name, name_metadata, name_metadata_of, name_of


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
