"""Everything ``iraas up`` writes is its owner's alone.

The state folder holds every stored image, result, video and student, the API key and the logs
(which name files and students): other local users must not read them. ``iraas up`` sets a umask
of 077 before it starts anything, so that every folder it or its children make is 0700 and every
file 0600, and tightens a state folder an older run left readable.
"""

from __future__ import annotations

import os
import stat
from pathlib import Path

PRIVATE_UMASK = 0o077
OTHERS = stat.S_IRWXG | stat.S_IRWXO


def keep_private(home: Path) -> None:
    """Set this process's umask (its children inherit it), make ``home`` 0700, and take the group's
    and others' bits off what an older run left in it (what this user does not own is left as it is)."""
    os.umask(PRIVATE_UMASK)
    home.mkdir(mode=0o700, parents=True, exist_ok=True)
    for path in (home, *home.rglob("*")):
        try:
            mode = path.lstat().st_mode
            if not stat.S_ISLNK(mode) and mode & OTHERS:
                path.chmod(stat.S_IMODE(mode) & ~OTHERS)
        except (PermissionError, FileNotFoundError):  # another user's file, or one gone meanwhile
            continue
