"""The embedded stack's API key: the one ``iraas up`` makes and keeps when it listens beyond this
machine, and what counts as "this machine"."""

from __future__ import annotations

import ipaddress
import os
import secrets
from pathlib import Path

from iraas.errors import ConfigError
from iraas.web.auth import parse_keys

KEY_FILE_NAME = "api-key"  # in the embedded stack's folder, when `iraas up` made one


def generated_key(home: Path) -> tuple[str, Path, bool]:
    """The key in ``home/api-key`` (made now, mode 0600, when there is none): key, path, made now.

    Kept between runs, so that clients set up once keep working after a restart.
    """
    path = home / KEY_FILE_NAME
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:
        os.chmod(path, 0o600)  # whatever made it, only this user may read it
        try:
            keys = parse_keys(path.read_text().strip())
        except ConfigError:
            keys = ()
        if len(keys) != 1:
            raise ConfigError(f"{path} does not hold one API key; delete it to have a new one made") from None
        return keys[0], path, False
    key = secrets.token_urlsafe(32)
    with os.fdopen(fd, "w") as handle:
        handle.write(key + "\n")
    return key, path, True


def is_loopback_host(host: str) -> bool:
    """Whether a listen address reaches this machine only (``127.0.0.0/8``, ``::1``, ``localhost``)."""
    if host.strip("[]").lower() == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False  # a name: it may resolve to anything
