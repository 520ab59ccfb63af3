"""iraas/cli/classify/inputs.py, `iraas classify PATH...`: which files a run classifies, given files and folders."""

from __future__ import annotations

from pathlib import Path

import pytest

from iraas.cli.classify.inputs import expand_paths
from iraas.errors import UsageError


def touch(root: Path, *names: str) -> None:
    for name in names:
        path = root / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(b"x")


def test_a_folder_gives_its_image_files_recursively_sorted_without_hidden_ones(tmp_path: Path) -> None:
    touch(
        tmp_path,
        "b.png", "a.JPEG", "notes.txt", "sub/c.webp", "sub/deeper/d.tiff", "sub/README",
        ".hidden.jpg", ".git/e.jpg", "sub/.cache/f.png",
    )
    inputs = expand_paths([str(tmp_path)])
    relative = [str(Path(p).relative_to(tmp_path)) for p in inputs.paths]
    assert relative == ["a.JPEG", "b.png", "sub/c.webp", "sub/deeper/d.tiff"]
    assert inputs.skipped == 2  # notes.txt and sub/README; hidden files are not counted


def test_files_named_explicitly_are_kept_in_the_order_given_whatever_their_extension(tmp_path: Path) -> None:
    touch(tmp_path, "z.jpg", "photo.dat", "folder/a.png", ".hidden.png")
    args = [str(tmp_path / "z.jpg"), str(tmp_path / "folder"), str(tmp_path / "photo.dat"), str(tmp_path / ".hidden.png")]
    inputs = expand_paths(args)
    assert inputs.paths == [args[0], str(tmp_path / "folder" / "a.png"), args[2], args[3]]
    assert inputs.skipped == 0


def test_folder_paths_keep_the_folder_as_given(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    touch(tmp_path, "photos/cat.jpg")
    monkeypatch.chdir(tmp_path)
    assert expand_paths(["photos"]).paths == ["photos/cat.jpg"]


def test_a_path_that_does_not_exist_stops_the_run_naming_it_and_how_many_more(tmp_path: Path) -> None:
    touch(tmp_path, "ok.jpg")
    with pytest.raises(UsageError) as error:
        expand_paths([str(tmp_path / "ok.jpg"), str(tmp_path / "typo.jpg"), str(tmp_path / "gone")])
    assert str(error.value) == f"{tmp_path / 'typo.jpg'}: no such file or directory (and 1 more)"


def test_an_empty_folder_gives_nothing(tmp_path: Path) -> None:
    (tmp_path / "empty").mkdir()
    inputs = expand_paths([str(tmp_path / "empty")])
    assert (inputs.paths, inputs.skipped) == ([], 0)
