"""The body of ``iraas classify FILE... [--json]``: classify local files in-process."""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import TextIO

from iraas.images.validation import ImageError

BATCH_SIZE = 16  # files decoded and inferred together: bounds memory, keeps batching efficient
PROGRESS_MIN_FILES = 2 * BATCH_SIZE  # below this a run is quick; progress would only flicker


def run(
    paths: list[str],
    as_json: bool,
    model_dir: Path,
    out: TextIO | None = None,
    err: TextIO | None = None,
    model: str | None = None,
) -> int:
    """Classify ``paths`` and print one line per file, in input order.

    Text lines are ``path<TAB>label<TAB>confidence``; with ``as_json`` each line is a JSON
    object with ``path``, ``label``, ``confidence``, ``wnid`` and ``top5``. A file that cannot be
    read or is not an image gets ``path: reason`` on ``err`` and the run goes on. Returns 0 if
    every file was classified, 1 if any failed, 2 if the model could not be loaded.
    ``out`` and ``err`` default to the *current* ``sys.stdout`` / ``sys.stderr``. ``model`` names
    the classifier (see :mod:`.models`); None means ``IRAAS_MODEL`` (default ``lite0-int8``).
    """
    out = sys.stdout if out is None else out
    err = sys.stderr if err is None else err
    # Imported here so that `iraas --help` and other commands do not pay for onnxruntime.
    from .export import ModelUnavailableError
    from .runtime import load_classifier

    try:
        classifier = load_classifier(Path(model_dir), progress=lambda line: print(line, file=err), model=model)
    except ModelUnavailableError as exc:
        print(f"iraas classify: {exc}", file=err)
        return 2

    show_progress = _isatty(err) and len(paths) >= PROGRESS_MIN_FILES
    progress = _Progress(err, len(paths)) if show_progress else None
    failed = 0
    for start in range(0, len(paths), BATCH_SIZE):
        chunk = paths[start : start + BATCH_SIZE]
        blobs: list[bytes] = []
        readable: list[str] = []
        for path in chunk:
            try:
                blobs.append(Path(path).read_bytes())
                readable.append(path)
            except OSError as exc:
                failed += 1
                _report(err, progress, f"{path}: {exc.strerror or exc}")
        for path, result in zip(readable, classifier.classify_bytes(blobs), strict=True):
            if isinstance(result, ImageError):
                failed += 1
                _report(err, progress, f"{path}: {result.message}")
            elif as_json:
                line = {
                    "path": path,
                    "label": result.best.label,
                    "confidence": round(result.best.confidence, 4),
                    "wnid": result.best.wnid,
                    "top5": [p.to_dict() for p in result.top5],
                }
                print(json.dumps(line, ensure_ascii=False), file=out)
            else:
                print(f"{path}\t{result.best.label}\t{result.best.confidence:.4f}", file=out)
        out.flush()
        if progress:
            progress.update(start + len(chunk))
    if progress:
        progress.done()
    return 1 if failed else 0


def _isatty(stream: TextIO) -> bool:
    try:
        return stream.isatty()
    except (AttributeError, ValueError):
        return False


class _Progress:
    """A single self-overwriting "classified N/M" line on a terminal."""

    def __init__(self, stream: TextIO, total: int) -> None:
        self.stream = stream
        self.total = total
        self.shown = False

    def update(self, done: int) -> None:
        self.stream.write(f"\rclassified {done}/{self.total}")
        self.stream.flush()
        self.shown = True

    def clear(self) -> None:
        if self.shown:
            self.stream.write("\r\033[K")  # carriage return + erase to end of line
            self.shown = False

    def done(self) -> None:
        if self.shown:
            self.stream.write("\n")
            self.stream.flush()


def _report(err: TextIO, progress: _Progress | None, message: str) -> None:
    if progress:
        progress.clear()
    print(message, file=err)
