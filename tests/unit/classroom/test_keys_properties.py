"""Properties of iraas/classroom/keys.py: a video key, a file name or an id that a user chose never
steers a key outside its prefix. A video's CSV stays beside it and is no video or enrolment; an
upload is a plain video name or refused; an owned video and its CSV stay in the caller's folder; an
enrolment photo's key names its enrolment."""

from __future__ import annotations

import re

import pytest
from hypothesis import example, given, settings
from hypothesis import strategies as st

from iraas.classroom import keys
from tests.support.keys import assert_contained, owners, request_ids, user_text

pytestmark = pytest.mark.timeout(60)
PROPERTY = settings(max_examples=300, deadline=None, derandomize=True, database=None)
SAFE_CHARS = re.compile(r"[A-Za-z0-9._-]+")


video_keys = st.one_of(
    user_text,
    st.builds(
        lambda folder, stem, ext: f"{folder}/{stem}{ext}",
        user_text, st.text(max_size=40), st.sampled_from(keys.VIDEO_EXTENSIONS),
    ),
)


@PROPERTY
@given(key=video_keys)
@example(key="../../enrolments/x.mp4")
@example(key="Class 1/monday.mp4")
@example(key="enrolments/../enrolments/a.mp4")
@example(key="a/.MP4")
def test_csv_key_stays_beside_its_video(key: str) -> None:
    """The CSV of a video is in the video's folder, never climbs out, and is not a video or an enrolment."""
    try:
        csv = keys.csv_key(key)
    except ValueError:
        assert keys.normalise_key(key) == ""
        return
    assert csv.endswith(".csv")
    assert not {"", ".", ".."} & set(csv.split("/"))
    normalised = keys.normalise_key(key)
    assert csv.rpartition("/")[0] == normalised.rpartition("/")[0]
    assert keys.csv_key(csv) == csv  # idempotent: a CSV's CSV is itself
    if keys.is_video_key(key):
        assert not keys.is_video_key(csv)
        assert not keys.is_enrolment_key(csv)
        # ".csv" replaces the extension, so the CSV's key is no longer than the video's; a video
        # named only by its extension (".mp4", a stem to posixpath) gets ".mp4.csv".
        assert len(csv.encode()) <= len(key.encode()) + (len(".csv") if normalised.rpartition("/")[2].startswith(".") else 0)


@PROPERTY
@given(filename=user_text)
@example(filename="../enrolments/a.mp4")
@example(filename=".mp4")
def test_upload_key_is_a_plain_video_name_or_refused(filename: str) -> None:
    try:
        key = keys.upload_key(filename)
    except ValueError:
        return
    assert "/" not in key and SAFE_CHARS.fullmatch(key)
    assert keys.is_video_key(key) and not keys.is_enrolment_key(key)


@PROPERTY
@given(
    owner=owners,
    video_id=request_ids,
    filename=st.one_of(st.none(), user_text),
    ctype=st.one_of(st.none(), st.text(max_size=30)),
)
def test_owned_video_and_csv_keys_stay_in_the_callers_folder(
    owner: str, video_id: str, filename: str | None, ctype: str | None
) -> None:
    try:
        ext = keys.video_extension(filename, ctype)
    except ValueError:
        return
    video = keys.owned_video_key(owner, video_id, ext)
    assert_contained(video, f"videos/{owner}/")
    assert keys.is_video_key(video)
    assert keys.csv_key(video) == keys.owned_csv_key(owner, video_id)


@PROPERTY
@given(enrolment_id=request_ids, image_format=st.text(max_size=30))
@example(enrolment_id="0" * 32, image_format="../../x")
@example(enrolment_id="0" * 32, image_format="ß")
def test_enrolment_photo_key_names_its_enrolment(enrolment_id: str, image_format: str) -> None:
    key = keys.enrolment_photo_key(enrolment_id, image_format)
    assert_contained(key, keys.ENROLMENT_PREFIX)
    assert keys.enrolment_id_of(key) == enrolment_id
    assert keys.is_enrolment_key(key) and not keys.is_video_key(key)
