"""iraas/cli/classroom.py: how `iraas videos show` words an attendance report, and the tables."""

from __future__ import annotations

from iraas.cli.classroom import describe_attendance, table


def test_a_report_that_is_not_written_or_was_refused_says_so_in_one_line():
    assert describe_attendance(None) == ["attendance: not written (yet)"]
    refused = {"video": "long.mp4", "error": {"code": "too_long", "message": "the video is longer than 7200 s"}}
    assert describe_attendance(refused) == ["attendance: none: the video is longer than 7200 s"]


def test_a_lecture_where_nobody_enrolled_was_seen_names_who_was_absent():
    report = {"duration_s": 90.5, "sample_every_s": 0.5, "frames_sampled": 181, "min_present_s": 45.25,
              "students": [], "absent": ["Ada", "Grace"], "unknown_faces": 0, "missing_spans": []}
    assert describe_attendance(report) == [
        "attendance: a 90.5 s lecture, one frame every 0.5 s (181 sampled); present after 45.25 s",
        "nobody enrolled was seen", "absent: Ada, Grace", "unknown people: 0",
    ]


def test_a_table_pads_every_column_but_the_last_and_shows_nothing_as_a_dash():
    assert table(("name", "year", "faces"), [("Ada Lovelace", None, 2), ("Bo", "1", 10)]) == [
        "name          year  faces",
        "Ada Lovelace  -     2",
        "Bo            1     10",
    ]
