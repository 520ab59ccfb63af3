"""``iraas up``'s state folder is private to its owner (issue 24: folders were 0755, the state database 0644)."""

from __future__ import annotations

import os
import stat
from collections.abc import Iterator
from pathlib import Path

import pytest

from iraas.local.privacy import keep_private


@pytest.fixture
def restore_umask() -> Iterator[None]:
    before = os.umask(0o022)
    try:
        yield
    finally:
        os.umask(before)


def mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def test_what_is_written_after_it_is_private(tmp_path: Path, restore_umask: None) -> None:
    home = tmp_path / "home"
    keep_private(home)
    (home / "logs").mkdir()
    (home / "logs" / "web.log").write_text("GET /v1/images/...\n")
    assert mode(home) == 0o700
    assert mode(home / "logs") == 0o700
    assert mode(home / "logs" / "web.log") == 0o600


def test_an_older_runs_readable_state_is_tightened(tmp_path: Path, restore_umask: None) -> None:
    home = tmp_path / "home"
    (home / "state").mkdir(parents=True)
    database = home / "state" / "endpoint.sqlite"
    database.write_bytes(b"SQLite format 3\0")
    os.chmod(home, 0o755)
    os.chmod(home / "state", 0o755)
    os.chmod(database, 0o644)
    script = home / "state" / "hook.sh"
    script.write_text("#!/bin/sh\n")
    os.chmod(script, 0o755)
    keep_private(home)
    assert [mode(p) for p in (home, home / "state", database, script)] == [0o700, 0o700, 0o600, 0o700]
