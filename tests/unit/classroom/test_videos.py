"""iraas/classroom/videos.py: a video uploaded over HTTP keeps its user's name, in ASCII metadata and
in the file name its CSV is downloaded under (no AWS, no engine)."""

from __future__ import annotations

import unicodedata
import urllib.parse

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



@pytest.mark.parametrize(
    "name", ["\u202evsc.exe", "lec\u2066ture\u2069.csv", "tab\tand\nnewline.csv", "zero\u200bwidth.csv"]
)
def test_bidi_and_control_characters_never_reach_a_download_name(name: str) -> None:
    header = content_disposition(name)
    plain, _, encoded = header.partition("; filename*=UTF-8''")
    shown = urllib.parse.unquote(encoded) if encoded else plain
    assert not any(unicodedata.category(c) in ("Cc", "Cf") for c in header + shown)
    assert "%E2%80%AE" not in header and "%E2%81%A6" not in header


def test_a_name_of_only_such_characters_still_downloads_under_a_name() -> None:
    assert content_disposition("\u202e\u202d") == 'attachment; filename="download.csv"'


class CountingS3:
    """The S3 calls a listing makes, on a bucket of ``videos`` keys (uploaded a second apart) and
    the outputs written, in pages of ``page`` keys."""

    def __init__(self, videos: list[str], outputs: list[str], page: int = 1000) -> None:
        from datetime import UTC, datetime, timedelta

        start = datetime(2026, 1, 5, 9, tzinfo=UTC)
        self.buckets = {
            "in": [{"Key": k, "Size": 10, "LastModified": start + timedelta(seconds=n)} for n, k in enumerate(videos)],
            "out": [{"Key": k, "Size": 1, "LastModified": start} for k in outputs],
        }
        self.page, self.calls = page, []

    def list_objects_v2(self, Bucket: str, Prefix: str, ContinuationToken: str = "0") -> dict:  # noqa: N803
        self.calls.append("list")
        keys = [o for o in self.buckets[Bucket] if o["Key"].startswith(Prefix)]
        at = int(ContinuationToken)
        more = at + self.page < len(keys)
        return {"Contents": keys[at : at + self.page], "IsTruncated": more,
                **({"NextContinuationToken": str(at + self.page)} if more else {})}

    def head_object(self, Bucket: str, Key: str) -> dict:  # noqa: N803
        self.calls.append("head")
        return {"Metadata": name_metadata(f"name of {Key.rsplit('/', 1)[-1]}")}


def test_a_callers_listing_is_newest_first_and_costs_a_list_per_bucket_and_a_head_per_video():
    from iraas.classroom.videos import list_videos

    ids = [f"{n:032x}" for n in range(3)]
    s3 = CountingS3([f"videos/alice/{i}.mp4" for i in ids] + [f"videos/bob/{'f' * 32}.mp4", "operator.mp4"],
                    [f"videos/alice/{ids[0]}.csv", f"videos/alice/{ids[0]}.attendance.json", f"videos/alice/{ids[1]}.csv"])
    found, truncated = list_videos(s3, "in", "out", "alice")
    assert [v.video for v in found] == ids[::-1] and not truncated
    assert [(v.csv, v.attendance) for v in found] == [(False, False), (True, False), (True, True)]
    assert found[0].name == f"name of {ids[2]}.mp4" and found[0].uploaded == "2026-01-05T09:00:02Z"
    assert sorted(s3.calls) == ["head"] * 3 + ["list"] * 2


def test_a_listing_is_bounded_and_says_when_there_were_more():
    from iraas.classroom.videos import list_videos

    s3 = CountingS3([f"lecture-{n:02d}.mp4" for n in range(12)], [], page=5)
    found, truncated = list_videos(s3, "in", "out", None, limit=4, max_pages=2)
    assert truncated and [v.video for v in found] == ["lecture-09.mp4", "lecture-08.mp4", "lecture-07.mp4", "lecture-06.mp4"]
    assert all(v.name is None for v in found)  # an operator's upload is named by its key: no HEAD
    assert s3.calls == ["list"] * 3  # two pages of the videos (bounded), one of the outputs

    found, truncated = list_videos(s3, "in", "out", None, limit=20)
    assert not truncated and len(found) == 12
