"""iraas/cli/classify/command.py: `iraas classify FOLDER` as a user runs it, with the real model on the shared photos: the
folder's images in order, an --output file, a summary, and a progress bar only on a terminal."""

from __future__ import annotations

import csv
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from iraas.config import REPO_ROOT

pytestmark = pytest.mark.slow


def iraas(*args: str, **kwargs) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "iraas.cli", *args], cwd=REPO_ROOT, capture_output=True, text=True, timeout=300, **kwargs
    )


@pytest.fixture(scope="module")
def folder(imagenet_sample, tmp_path_factory) -> Path:
    """Six shared photos (linked, not copied) in a folder and a subfolder, beside a text file, a
    .jpg that is not an image, and a hidden folder that must be left out."""
    root = tmp_path_factory.mktemp("photos")
    (root / "more").mkdir()
    (root / ".thumbnails").mkdir()
    for n, photo in enumerate(imagenet_sample[:6]):
        (root / ("more" if n >= 4 else ".") / photo.path.name).symlink_to(photo.path)
    (root / ".thumbnails" / imagenet_sample[0].path.name).symlink_to(imagenet_sample[0].path)
    (root / "notes.txt").write_text("not a photo")
    (root / "broken.jpg").write_bytes(b"this is not a JPEG")
    return root


def expected_paths(folder: Path) -> list[str]:
    top = sorted(p.name for p in folder.iterdir() if p.is_file() and p.suffix in (".JPEG", ".jpg"))
    more = sorted(p.name for p in (folder / "more").iterdir())
    return sorted([str(folder / n) for n in top] + [str(folder / "more" / n) for n in more], key=lambda p: Path(p).parts)


def test_a_folder_is_classified_into_a_csv_with_a_summary(folder: Path, classifier, tmp_path: Path) -> None:
    results = tmp_path / "results.csv"
    done = iraas("classify", str(folder), "--output", str(results))
    assert done.returncode == 1, done.stderr  # broken.jpg
    assert done.stdout == ""  # the results are in the file
    with open(results, newline="") as f:
        rows = list(csv.DictReader(f))
    assert [r["path"] for r in rows] == expected_paths(folder)
    by_path = {r["path"]: r for r in rows}
    assert by_path[str(folder / "broken.jpg")]["error"].startswith("not an image")
    photos = [p for p in by_path if not p.endswith("broken.jpg")]
    answers = classifier.classify_bytes([Path(p).read_bytes() for p in photos])
    assert [by_path[p]["label"] for p in photos] == [a.best.label for a in answers]
    assert all(by_path[p]["error"] == "" and by_path[p]["wnid"].startswith("n") for p in photos)

    lines = done.stderr.splitlines()
    assert f"{folder / 'broken.jpg'}: not an image, or an image format we cannot read" in lines
    summary = next(line for line in lines if line.startswith("classified "))
    assert summary.startswith("classified 6 of 7 images in ")
    assert summary.endswith("; 1 failed; skipped 1 file that is not an image")
    assert lines[-1] == f"results in {results}"
    assert "\r" not in done.stderr  # piped: no progress bar


def test_a_folder_to_stdout_keeps_the_tab_separated_and_json_formats(folder: Path) -> None:
    text = iraas("classify", str(folder / "more"))
    assert text.returncode == 0, text.stderr
    rows = [line.split("\t") for line in text.stdout.splitlines()]
    assert [r[0] for r in rows] == sorted(str(p) for p in (folder / "more").iterdir())
    assert all(len(r) == 3 and 0 < float(r[2]) <= 1 for r in rows)
    as_json = iraas("classify", "--json", str(folder / "more"))
    assert [json.loads(line)["label"] for line in as_json.stdout.splitlines()] == [r[1] for r in rows]
    assert "classified 2 images in " in text.stderr


def test_a_terminal_shows_a_progress_bar_and_a_pipe_does_not(imagenet_sample, tmp_path: Path) -> None:
    many = tmp_path / "many"
    many.mkdir()
    for photo in imagenet_sample[:40]:  # past the few files for which a bar would only flicker
        (many / photo.path.name).symlink_to(photo.path)

    # stderr on a pseudo-terminal, stdout on a pipe: the bar goes to the terminal only.
    terminal, terminal_side = os.openpty()
    process = subprocess.Popen(
        [sys.executable, "-m", "iraas.cli", "classify", str(many)], cwd=REPO_ROOT,
        stdout=subprocess.PIPE, stderr=terminal_side, text=True,
    )
    os.close(terminal_side)
    shown = b""
    while True:
        try:
            chunk = os.read(terminal, 4096)
        except OSError:  # the process closed its side
            break
        if not chunk:
            break
        shown += chunk
    stdout = process.stdout.read() if process.stdout else ""
    assert process.wait(timeout=300) == 0
    os.close(terminal)
    text = shown.decode()
    assert "\rclassified 40/40 [####################] 100%" in text
    assert "classified 40 images in " in text
    assert len(stdout.splitlines()) == 40 and "\r" not in stdout

    piped = iraas("classify", str(many))
    assert piped.returncode == 0
    assert "\r" not in piped.stderr and "[#" not in piped.stderr
    assert piped.stderr.splitlines()[-1].startswith("classified 40 images in ")


def test_batches_classified_side_by_side_keep_the_input_order(imagenet_sample, model_path: Path, tmp_path: Path) -> None:
    import io

    from iraas.cli.classify import command

    broken = tmp_path / "broken.jpg"
    broken.write_bytes(b"this is not a JPEG")
    photos = [str(p.path) for p in imagenet_sample[:40]]
    # Four batches of 16 with an unreadable file, a bad image and a repeated photo among them.
    paths = photos[:20] + [str(tmp_path / "missing.jpg"), str(broken), photos[0]] + photos[20:] + photos[:15]
    outputs = []
    for lanes in (1, 3):
        out, err = io.StringIO(), io.StringIO()
        assert command.run(paths, False, model_path.parent, out=out, err=err, lanes=lanes) == 1
        outputs.append((out.getvalue(), err.getvalue()))
    assert outputs[0] == outputs[1]
    text, errors = outputs[0]
    rows = [line.split("\t") for line in text.splitlines()]
    assert [r[0] for r in rows] == [p for p in paths if "missing" not in p and "broken" not in p]
    assert rows[0][1] == rows[20][1]  # the repeated photo, answered twice alike
    assert errors.splitlines() == [
        f"{tmp_path / 'missing.jpg'}: No such file or directory",
        f"{broken}: not an image, or an image format we cannot read",
    ]
