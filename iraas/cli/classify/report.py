"""How ``iraas classify`` shows its work: result writers, the progress line, the summary.

Results go to stdout or an ``--output`` file; the progress line and the summary go to stderr, so
a pipe or a redirect receives only results.
"""

from __future__ import annotations

import csv
import json
import math
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol, TextIO

OUTPUT_SUFFIXES = (".csv", ".jsonl")
CSV_COLUMNS = ["path", "label", "confidence", "wnid", "error"]


@dataclass(frozen=True)
class FileResult:
    """One input's outcome: a label, or the reason it has none."""

    path: str
    label: str | None = None
    confidence: float | None = None
    wnid: str | None = None
    top5: tuple[dict[str, Any], ...] = ()
    error: str | None = None
    latency_s: float | None = None  # --remote: from sending the file to having its answer

    @property
    def ok(self) -> bool:
        return self.error is None

    def to_json(self) -> dict[str, Any]:
        """The ``--json`` line: path, label, confidence, wnid (left out for a model without WordNet
        ids: one of one's own), top5; or path and error."""
        if self.error is not None:
            return {"path": self.path, "error": self.error}
        line: dict[str, Any] = {
            "path": self.path,
            "label": self.label,
            "confidence": None if self.confidence is None else round(self.confidence, 4),
        }
        if self.wnid is not None:
            line["wnid"] = self.wnid
        line["top5"] = list(self.top5)
        return line


class ResultWriter(Protocol):
    def write(self, result: FileResult) -> None: ...

    def close(self) -> None: ...


class TextLines:
    """``path<TAB>label<TAB>confidence`` per classified file; failures are on stderr only."""

    def __init__(self, stream: TextIO) -> None:
        self.stream = stream

    def write(self, result: FileResult) -> None:
        if result.ok:
            self.stream.write(f"{result.path}\t{result.label}\t{result.confidence or 0:.4f}\n")
            self.stream.flush()  # a reader of the pipe sees each result as it comes

    def close(self) -> None:
        self.stream.flush()


class JsonLines:
    """One JSON object per line; ``failures``: failed files get ``{"path", "error"}`` lines too
    (an ``--output`` file holds every input; ``--json`` on stdout, as before, only the labels)."""

    def __init__(self, stream: TextIO, failures: bool, owned: bool = False) -> None:
        self.stream, self.failures, self.owned = stream, failures, owned

    def write(self, result: FileResult) -> None:
        if result.ok or self.failures:
            self.stream.write(json.dumps(result.to_json(), ensure_ascii=False) + "\n")
            self.stream.flush()

    def close(self) -> None:
        if self.owned:
            self.stream.close()
        else:
            self.stream.flush()


class CsvRows:
    """A header, then one row per input: ``path,label,confidence,wnid,error`` (``error`` empty for a
    label, the rest for an error; ``wnid`` empty too for a model without WordNet ids)."""

    def __init__(self, stream: TextIO) -> None:
        self.stream = stream
        self.rows = csv.writer(stream)
        self.rows.writerow(CSV_COLUMNS)

    def write(self, result: FileResult) -> None:
        confidence = "" if result.confidence is None else f"{result.confidence:.4f}"
        self.rows.writerow([result.path, result.label or "", confidence, result.wnid or "", result.error or ""])
        self.stream.flush()  # an interrupted run keeps what it had

    def close(self) -> None:
        self.stream.close()


def check_output_path(value: str) -> str:
    """``--output``'s check: the suffix names the format; raises ValueError otherwise."""
    if Path(value).suffix.lower() not in OUTPUT_SUFFIXES:
        raise ValueError(f"{value!r} must end in .csv or .jsonl (the suffix chooses the format)")
    return value


def open_output(path: str) -> ResultWriter:
    """A writer for ``path``, by suffix: ``.csv`` or ``.jsonl``. Opened before any work starts,
    so that a folder that does not exist is reported at once (an OSError)."""
    check_output_path(path)
    if Path(path).suffix.lower() == ".csv":
        return CsvRows(open(path, "w", newline="", encoding="utf-8"))  # noqa: SIM115 - closed by close()
    return JsonLines(open(path, "w", encoding="utf-8"), failures=True, owned=True)  # noqa: SIM115


def stdout_writer(stream: TextIO, as_json: bool) -> ResultWriter:
    return JsonLines(stream, failures=False) if as_json else TextLines(stream)


# ---- progress -------------------------------------------------------------------------------


def isatty(stream: TextIO) -> bool:
    try:
        return stream.isatty()
    except (AttributeError, ValueError):  # no such method, or a closed stream
        return False


class Progress:
    """One self-overwriting line on a terminal:
    ``classified 160/500 [######--------------]  32%  40.1/s  1 failed  ~8 s left``."""

    WIDTH = 20  # characters of the bar

    def __init__(
        self,
        stream: TextIO,
        total: int,
        min_interval_s: float = 0.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.stream, self.total, self.min_interval_s, self.clock = stream, total, min_interval_s, clock
        self.started = clock()
        self.shown = False
        self._drawn_at = -math.inf
        self._last: tuple[int, int] = (0, 0)

    def update(self, done: int, failed: int = 0) -> None:
        """``done`` files finished (``failed`` of them without a label). Redrawn at most every
        ``min_interval_s``, except the last one."""
        self._last = (done, failed)
        now = self.clock()
        if done < self.total and now - self._drawn_at < self.min_interval_s:
            return
        self._drawn_at = now
        # Erased to the end: a line shorter than the last one leaves none of it behind.
        self.stream.write("\r" + self.line(done, failed, now - self.started) + "\033[K")
        self.stream.flush()
        self.shown = True

    def line(self, done: int, failed: int, elapsed_s: float) -> str:
        fraction = done / self.total if self.total else 1.0
        filled = round(fraction * self.WIDTH)
        text = f"classified {done}/{self.total} [{'#' * filled}{'-' * (self.WIDTH - filled)}] {fraction:4.0%}"
        if elapsed_s > 0 and done:
            rate = done / elapsed_s
            text += f"  {rate:.1f}/s"
            if done < self.total:
                text += f"  ~{format_duration((self.total - done) / rate)} left"
        if failed:
            text += f"  {failed} failed"
        return text

    def clear(self) -> None:
        """Erase the line, so that a message can be printed in its place (redrawn next update)."""
        if self.shown:
            self.stream.write("\r\033[K")  # carriage return + erase to end of line
            self.stream.flush()
            self.shown = False

    def message(self, text: str) -> None:
        """Print ``text`` on its own line, then the progress line again below it."""
        self.clear()
        self.stream.write(text + "\n")
        done, failed = self._last
        if done:
            self._drawn_at = -math.inf
            self.update(done, failed)

    def done(self) -> None:
        if self.shown:
            self.stream.write("\n")
            self.stream.flush()
            self.shown = False


class Messages:
    """Where per-file failure lines go: through the progress line when one is shown."""

    def __init__(self, stream: TextIO, progress: Progress | None) -> None:
        self.stream, self.progress = stream, progress

    def __call__(self, text: str) -> None:
        if self.progress is not None:
            self.progress.message(text)
        else:
            print(text, file=self.stream, flush=True)


# ---- summary --------------------------------------------------------------------------------


def percentile(values: Sequence[float], q: float) -> float:
    """The ``q``-th percentile (0-100) by linear interpolation between the closest ranks, as
    numpy's default does: p0 is the smallest value, p100 the largest."""
    if not values:
        raise ValueError("no values")
    if not 0 <= q <= 100:
        raise ValueError(f"percentile {q} is outside [0, 100]")
    ordered = sorted(values)
    rank = (len(ordered) - 1) * q / 100
    low = math.floor(rank)
    high = min(low + 1, len(ordered) - 1)
    return ordered[low] + (ordered[high] - ordered[low]) * (rank - low)


def format_duration(seconds: float) -> str:
    if seconds < 60:
        return f"{seconds:.1f} s"
    minutes, rest = divmod(round(seconds), 60)
    if minutes < 60:
        return f"{minutes} min {rest:02d} s"
    hours, minutes = divmod(minutes, 60)
    return f"{hours} h {minutes:02d} min"


@dataclass
class Summary:
    """What a run did, for the lines it ends with."""

    total: int  # files attempted
    failed: int
    elapsed_s: float
    skipped: int = 0  # files in the folders that are not images by extension
    latencies_s: list[float] = field(default_factory=list)  # --remote: one per answered file
    concurrency: int | None = None  # --remote: requests in flight at a time

    @property
    def classified(self) -> int:
        return self.total - self.failed

    @property
    def images_per_s(self) -> float:
        return self.classified / self.elapsed_s if self.elapsed_s > 0 else 0.0

    def lines(self) -> list[str]:
        images = "image" if self.total == 1 else "images"
        counted = f"{self.classified} of {self.total} {images}" if self.failed else f"{self.total} {images}"
        first = f"classified {counted} in {format_duration(self.elapsed_s)} ({self.images_per_s:.1f} images/s)"
        if self.failed:
            first += f"; {self.failed} failed"
        if self.skipped:
            first += "; skipped 1 file that is not an image" if self.skipped == 1 else (
                f"; skipped {self.skipped} files that are not images"
            )
        lines = [first]
        if self.latencies_s:
            p50, p90, p99 = (percentile(self.latencies_s, q) for q in (50, 90, 99))
            latency = f"latency p50 {p50:.2f} s, p90 {p90:.2f} s, p99 {p99:.2f} s, max {max(self.latencies_s):.2f} s"
            if self.concurrency:
                latency += f" ({self.concurrency} requests at a time)"
            lines.append(latency)
        return lines
