"""The body of ``iraas classify PATH...``: classify local files in-process."""

from __future__ import annotations

import sys
import time
from collections import deque
from collections.abc import Callable, Generator
from concurrent.futures import ThreadPoolExecutor
from itertools import islice
from pathlib import Path
from typing import TYPE_CHECKING, TextIO

from iraas.config import usable_cores
from iraas.errors import ConfigError
from iraas.media.validation import ImageError

from .report import FileResult, Messages, Progress, ResultWriter, Summary, isatty, stdout_writer

if TYPE_CHECKING:
    from iraas.images.model.runtime import Classification, Classifier

BATCH_SIZE = 16  # files decoded and inferred together: bounds memory, keeps batching efficient
# Batches run side by side, one per core, each decoded and inferred on its own thread (one
# inference thread each): more images/s on 2 cores than one batch at a time with its decoding
# and then its inference spread over both cores, which leaves a core idle whenever one thread
# waits for the other (bench.classifier measures both loops: "iraas_classify_images_per_s"). The
# classifier is loaded for that many concurrent batches (OpenVINO: one stream per lane).
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
    lanes: int | None = None,
) -> int:
    """Classify ``paths`` and write one result per file, in input order.

    By default results go to ``out`` as ``path<TAB>label<TAB>confidence`` lines, or with
    ``as_json`` as JSON objects with ``path``, ``label``, ``confidence``, ``wnid`` (left out for a
    model of one's own) and ``top5`` (as many as the model has labels, up to 5);
    ``writer`` replaces both (an ``--output`` file). A file that cannot be read or is not an image
    gets ``path: reason`` on ``err`` and the run goes on. On a terminal ``err`` shows a progress
    line; with ``summary`` the run ends with counts and images/s on ``err`` (``skipped``: files
    the folders held that are not images). Returns 0 if every file was classified, 1 if any
    failed, 2 if the model could not be loaded (or is refused: one line on ``err``). ``out`` and
    ``err`` default to the *current* ``sys.stdout`` / ``sys.stderr``. ``model`` names the
    classifier (a built-in name or an own ``.onnx``, see :mod:`iraas.images.model.models`); None
    means ``IRAAS_MODEL`` (default ``lite0-int8``). ``lanes``: batches classified side by side
    (default one per usable core).
    """
    out = sys.stdout if out is None else out
    err = sys.stderr if err is None else err
    writer = stdout_writer(out, as_json) if writer is None else writer
    # Imported here so that `iraas --help` and other commands do not pay for the runtimes.
    from iraas.images.model.files import ModelUnavailableError
    from iraas.images.model.runtime import load_classifier

    lanes = max(1, lanes or usable_cores())
    try:
        classifier = load_classifier(
            Path(model_dir), threads=1, progress=lambda line: print(line, file=err), model=model, streams=lanes
        )
    except ModelUnavailableError as exc:
        print(f"iraas classify: {exc}", file=err)
        return 2
    except ConfigError as exc:  # IRAAS_MODEL names no model, or a model of one's own that is refused
        print(f"iraas classify: configuration error: {exc}", file=err)
        return 2

    started = clock()
    show_progress = isatty(err) and len(paths) >= PROGRESS_MIN_FILES
    progress = Progress(err, len(paths), clock=clock) if show_progress else None
    report = Messages(err, progress)
    failed = 0
    done = 0
    batches = classify_files(classifier, paths, lanes)
    try:
        for chunk in batches:
            for path, result in chunk:
                if isinstance(result, (str, ImageError)):
                    reason = result if isinstance(result, str) else result.message
                    failed += 1
                    report(f"{path}: {reason}")
                    writer.write(FileResult(path, error=reason))
                else:
                    best = result.best
                    top5 = tuple(p.to_dict() for p in result.top5)
                    writer.write(FileResult(path, best.label, best.confidence, best.wnid, top5))
            done += len(chunk)
            if progress:
                progress.update(done, failed)
    finally:
        batches.close()  # Ctrl-C: no new batch starts
        if progress:
            progress.done()  # the line ends, even when Ctrl-C cut the run short
    if summary:
        for line in Summary(len(paths), failed, clock() - started, skipped=skipped).lines():
            print(line, file=err)
    return 1 if failed else 0


def classify_files(
    classifier: Classifier, paths: list[str], lanes: int | None = None
) -> Generator[list[tuple[str, Classification | ImageError | str]], None, None]:
    """``paths`` in batches of :data:`BATCH_SIZE`, ``lanes`` batches at a time (default one per
    usable core; ``classifier`` should then run one inference thread). Yields each batch's
    ``(path, result)`` pairs in input order, whichever lane finishes first; a result is a
    classification, an ImageError, or why the file could not be read. At most two batches per
    lane are started ahead of the one being yielded, so a slow reader of the results (a pipe to
    ``less``) holds memory for those, not for the whole run. Closing it early cancels the
    batches not yet started."""
    lanes = max(1, lanes or usable_cores())
    chunks = (paths[start : start + BATCH_SIZE] for start in range(0, len(paths), BATCH_SIZE))
    pool = ThreadPoolExecutor(lanes, thread_name_prefix="classify")
    try:
        ahead = deque(pool.submit(_classify_chunk, classifier, chunk) for chunk in islice(chunks, 2 * lanes))
        while ahead:
            done = ahead.popleft().result()
            for chunk in islice(chunks, 1):
                ahead.append(pool.submit(_classify_chunk, classifier, chunk))
            yield done
    finally:
        pool.shutdown(cancel_futures=True)


def _classify_chunk(classifier: Classifier, paths: list[str]) -> list[tuple[str, Classification | ImageError | str]]:
    """One lane's batch: each path with its classification, its ImageError, or why it could not be read."""
    read: list[bytes | str] = []
    for path in paths:
        try:
            read.append(Path(path).read_bytes())
        except OSError as exc:
            read.append(exc.strerror or str(exc))
    classified = iter(classifier.classify_bytes([blob for blob in read if isinstance(blob, bytes)]))
    return [(path, next(classified) if isinstance(item, bytes) else item) for path, item in zip(paths, read, strict=True)]
