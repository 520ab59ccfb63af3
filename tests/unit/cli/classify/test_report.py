"""iraas/cli/classify/report.py, what `iraas classify` writes: result files, the progress line on a terminal, the summary."""

from __future__ import annotations

import csv
import io
import json
from pathlib import Path

import pytest

from iraas.cli.classify.report import (
    FileResult,
    Messages,
    Progress,
    Summary,
    check_output_path,
    isatty,
    open_output,
    percentile,
    stdout_writer,
)

TOP5 = ({"label": "tench", "wnid": "n01440764", "confidence": 0.87},)
CAT = FileResult("photos/cat.jpg", "tiger cat", 0.25199, "n02123159", TOP5)
BROKEN = FileResult("photos/broken.jpg", error="not an image, or an image format we cannot read")


class Tty(io.StringIO):
    def isatty(self) -> bool:
        return True


class Clock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


# ---- result writers -------------------------------------------------------------------------


def test_csv_output_has_a_header_and_one_row_per_input_failures_included(tmp_path: Path) -> None:
    path = tmp_path / "results.csv"
    writer = open_output(str(path))
    writer.write(CAT)
    writer.write(BROKEN)
    writer.close()
    with open(path, newline="") as f:
        rows = list(csv.reader(f))
    assert rows == [
        ["path", "label", "confidence", "wnid", "error"],
        ["photos/cat.jpg", "tiger cat", "0.2520", "n02123159", ""],
        ["photos/broken.jpg", "", "", "", "not an image, or an image format we cannot read"],
    ]


def test_jsonl_output_has_every_input_with_top5_or_error(tmp_path: Path) -> None:
    path = tmp_path / "results.JSONL"  # the suffix is read case-insensitively
    writer = open_output(str(path))
    writer.write(CAT)
    writer.write(BROKEN)
    writer.close()
    lines = [json.loads(line) for line in path.read_text().splitlines()]
    assert lines == [
        {"path": "photos/cat.jpg", "label": "tiger cat", "confidence": 0.252, "wnid": "n02123159", "top5": list(TOP5)},
        {"path": "photos/broken.jpg", "error": "not an image, or an image format we cannot read"},
    ]


def test_stdout_keeps_its_formats_tab_separated_or_json_and_leaves_failures_to_stderr() -> None:
    text, js = io.StringIO(), io.StringIO()
    for stream, as_json in ((text, False), (js, True)):
        writer = stdout_writer(stream, as_json)
        writer.write(CAT)
        writer.write(BROKEN)
        writer.close()
    assert text.getvalue() == "photos/cat.jpg\ttiger cat\t0.2520\n"
    (line,) = js.getvalue().splitlines()
    assert list(json.loads(line)) == ["path", "label", "confidence", "wnid", "top5"]


@pytest.mark.parametrize("name", ["results.csv", "out/results.CSV", "r.jsonl"])
def test_output_names_ending_in_csv_or_jsonl_are_accepted(name: str) -> None:
    assert check_output_path(name) == name


@pytest.mark.parametrize("name", ["results.txt", "results", "results.json"])
def test_other_output_names_are_refused_saying_what_is_accepted(name: str) -> None:
    with pytest.raises(ValueError, match=r"must end in \.csv or \.jsonl"):
        check_output_path(name)


def test_an_output_folder_that_does_not_exist_fails_when_opened(tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError):
        open_output(str(tmp_path / "missing" / "results.csv"))


# ---- progress -------------------------------------------------------------------------------


def test_a_pipe_or_a_file_is_not_a_terminal() -> None:
    assert not isatty(io.StringIO())
    assert isatty(Tty())
    closed = io.StringIO()
    closed.close()
    assert not isatty(closed)


def test_progress_redraws_one_line_with_a_bar_rate_and_time_left() -> None:
    stream, clock = Tty(), Clock()
    progress = Progress(stream, 40, clock=clock)
    clock.now += 2
    progress.update(10, failed=1)
    clock.now += 6
    progress.update(40, failed=1)
    progress.done()
    draws = stream.getvalue().split("\r")[1:]
    assert draws[0] == "classified 10/40 [#####---------------]  25%  5.0/s  ~6.0 s left  1 failed\033[K"
    assert draws[1] == "classified 40/40 [####################] 100%  5.0/s  1 failed\033[K\n"


def test_progress_is_redrawn_at_most_every_interval_but_the_last_update_always() -> None:
    stream, clock = Tty(), Clock()
    progress = Progress(stream, 3, min_interval_s=0.5, clock=clock)
    progress.update(1)
    clock.now += 0.1
    progress.update(2)  # too soon: skipped
    clock.now += 0.1
    progress.update(3)  # the last: drawn
    draws = stream.getvalue().split("\r")[1:]
    assert [d.split()[1] for d in draws] == ["1/3", "3/3"]


def test_a_message_is_printed_above_the_progress_line() -> None:
    stream = Tty()
    progress = Progress(stream, 10, clock=Clock())
    progress.update(5)
    Messages(stream, progress)("photos/broken.jpg: not an image")
    text = stream.getvalue()
    after_erase = text.split("\r\033[K", 1)[1]
    assert after_erase.startswith("photos/broken.jpg: not an image\n\rclassified 5/10")


def test_without_progress_messages_are_plain_lines() -> None:
    stream = io.StringIO()
    Messages(stream, None)("photos/broken.jpg: not an image")
    assert stream.getvalue() == "photos/broken.jpg: not an image\n"


# ---- summary --------------------------------------------------------------------------------


def test_percentiles_interpolate_between_the_closest_ranks() -> None:
    values = [float(v) for v in range(1, 101)]
    assert percentile(values, 50) == pytest.approx(50.5)
    assert percentile(values, 90) == pytest.approx(90.1)
    assert percentile(values, 99) == pytest.approx(99.01)
    assert percentile([3.0, 1.0, 2.0, 4.0], 90) == pytest.approx(3.7)  # order of the input does not matter
    assert percentile([0.2], 99) == 0.2
    assert (percentile(values, 0), percentile(values, 100)) == (1.0, 100.0)
    with pytest.raises(ValueError):
        percentile([], 50)


def test_the_summary_of_a_clean_run_gives_the_count_and_the_rate() -> None:
    assert Summary(total=500, failed=0, elapsed_s=12.5).lines() == ["classified 500 images in 12.5 s (40.0 images/s)"]
    assert Summary(total=1, failed=0, elapsed_s=0.5).lines() == ["classified 1 image in 0.5 s (2.0 images/s)"]


def test_the_summary_counts_failures_and_skipped_files_and_rates_only_the_classified() -> None:
    summary = Summary(total=500, failed=2, elapsed_s=83, skipped=3)
    assert summary.lines() == [
        "classified 498 of 500 images in 1 min 23 s (6.0 images/s); 2 failed; skipped 3 files that are not images"
    ]
    assert Summary(total=2, failed=2, elapsed_s=0).images_per_s == 0.0


def test_a_remote_summary_adds_latency_percentiles() -> None:
    latencies = [0.1 * n for n in range(1, 11)]  # 0.1 .. 1.0 s
    lines = Summary(total=10, failed=0, elapsed_s=2.0, latencies_s=latencies, concurrency=4).lines()
    assert lines[1] == "latency p50 0.55 s, p90 0.91 s, p99 0.99 s, max 1.00 s (4 requests at a time)"
