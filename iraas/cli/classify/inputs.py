"""What ``iraas classify PATH...`` classifies: files as named, folders expanded to their images."""

from __future__ import annotations

import os
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

from iraas.errors import UsageError

# What a folder contributes, by extension (case-insensitive): the formats Pillow reads that
# cameras and the web use. A file named explicitly is classified whatever its name.
IMAGE_SUFFIXES = frozenset({".jpg", ".jpeg", ".jpe", ".jfif", ".png", ".webp", ".bmp", ".gif", ".tif", ".tiff"})


@dataclass(frozen=True)
class Inputs:
    paths: list[str] = field(default_factory=list)  # in order: arguments as given, folders sorted
    skipped: int = 0  # files inside the folders that are not images by extension


def is_image_name(name: str) -> bool:
    return Path(name).suffix.lower() in IMAGE_SUFFIXES


def expand_paths(args: Sequence[str]) -> Inputs:
    """Each file as named; each folder's image files, recursively, sorted by path.

    Hidden files and folders (a name starting with ``.``) inside a folder are left out. A path
    that does not exist raises :class:`UsageError` before anything is classified, naming the
    first such path and how many more there are: a typo is cheaper to fix before a long run.
    """
    paths: list[str] = []
    skipped = 0
    missing: list[str] = []
    for arg in args:
        if os.path.isdir(arg):
            found, not_images = _walk(arg)
            paths.extend(found)
            skipped += not_images
        elif os.path.exists(arg):
            paths.append(arg)
        else:
            missing.append(arg)
    if missing:
        more = f" (and {len(missing) - 1} more)" if len(missing) > 1 else ""
        raise UsageError(f"{missing[0]}: no such file or directory{more}")
    return Inputs(paths, skipped)


def _walk(top: str) -> tuple[list[str], int]:
    found: list[str] = []
    skipped = 0

    def unreadable(exc: OSError) -> None:
        raise exc  # a folder we cannot list is the user's to fix, not to skip silently

    for folder, dirs, files in os.walk(top, onerror=unreadable):
        dirs[:] = [d for d in dirs if not d.startswith(".")]  # pruned: never descended into
        for name in files:
            if name.startswith("."):
                continue
            if is_image_name(name):
                found.append(os.path.join(folder, name))
            else:
                skipped += 1
    # os.walk lists in the file system's order; sorted by path components, a run is the same everywhere.
    found.sort(key=lambda p: Path(p).parts)
    return found, skipped
