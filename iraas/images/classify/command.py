"""The body of ``iraas classify PATH...``: classify local files in-process."""

from __future__ import annotations

import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import TextIO

from iraas.images.validation import ImageError

from .report import FileResult, Messages, Progress, ResultWriter, Summary, isatty, stdout_writer

BATCH_SIZE = 16  # files decoded and inferred together: bounds memory, keeps batching efficient
PROGRESS_MIN_FILES = 2 * BATCH_SIZE  # below this a run is quick; progress would only flicker


def run(
    paths: list[str],
    as_json: bool,
    model_dir: Path,
    out: TextIO | None = None,
    err: TextIO | None = None,
    model: str | None = None,
    *,
    writer: ResultWriter | None = None,
    summary: bool = False,
    skipped: int = 0,
    clock: Callable[[], float] = time.monotonic,
) -> int:
    """Classify ``paths`` and write one result per file, in input order.

    By default results go to ``out`` as ``path<TAB>label<TAB>confidence`` lines, or with
    ``as_json`` as JSON objects with ``path``, ``label``, ``confidence``, ``wnid`` and ``top5``;
    ``writer`` replaces both (an ``--output`` file). A file that cannot be read or is not an image
    gets ``path: reason`` on ``err`` and the run goes on. On a terminal ``err`` shows a progress
    line; with ``summary`` the run ends with counts and images/s on ``err`` (``skipped``: files
    the folders held that are not images). Returns 0 if every file was classified, 1 if any
    failed, 2 if the model could not be loaded. ``out`` and ``err`` default to the *current*
    ``sys.stdout`` / ``sys.stderr``. ``model`` names the classifier (see :mod:`.models`); None
    means ``IRAAS_MODEL`` (default ``lite0-int8``).
    """
    out = sys.stdout if out is None else out
    err = sys.stderr if err is None else err
    writer = stdout_writer(out, as_json) if writer is None else writer
    # Imported here so that `iraas --help` and other commands do not pay for onnxruntime.
    from .export import ModelUnavailableError
    from .runtime import load_classifier

    try:
        classifier = load_classifier(Path(model_dir), progress=lambda line: print(line, file=err), model=model)
    except ModelUnavailableError as exc:
        print(f"iraas classify: {exc}", file=err)
        return 2

    started = clock()
    show_progress = isatty(err) and len(paths) >= PROGRESS_MIN_FILES
    progress = Progress(err, len(paths), clock=clock) if show_progress else None
    report = Messages(err, progress)
    failed = 0
    try:
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
                    reason = exc.strerror or str(exc)
                    report(f"{path}: {reason}")
                    writer.write(FileResult(path, error=reason))
            for path, result in zip(readable, classifier.classify_bytes(blobs), strict=True):
                if isinstance(result, ImageError):
                    failed += 1
                    report(f"{path}: {result.message}")
                    writer.write(FileResult(path, error=result.message))
                else:
                    best = result.best
                    top5 = tuple(p.to_dict() for p in result.top5)
                    writer.write(FileResult(path, best.label, best.confidence, best.wnid, top5))
            if progress:
                progress.update(start + len(chunk), failed)
    finally:
        if progress:
            progress.done()  # the line ends, even when Ctrl-C cut the run short
    if summary:
        for line in Summary(len(paths), failed, clock() - started, skipped=skipped).lines():
            print(line, file=err)
    return 1 if failed else 0
