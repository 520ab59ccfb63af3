"""The embedded stack's description on disk (``.iraas/stack.json``), read by iraas.config."""

from __future__ import annotations

import json
import os
import tempfile
from pathlib import Path


def write_stack_file(
    path: str | Path,
    endpoint_url: str,
    region: str,
    resources: dict[str, str],
    stack_name: str = "iraas",
    web_url: str | None = None,
) -> None:
    """Write the description atomically, so a reader never sees half a file. ``web_url``: where
    the web tier serves (``iraas status`` shows it)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    data = {
        "endpoint_url": endpoint_url,
        "region": region,
        "stack_name": stack_name,
        "resources": dict(resources),
    }
    if web_url:
        data["web_url"] = web_url
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as handle:
            json.dump(data, handle, indent=2, sort_keys=True)
            handle.write("\n")
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def remove_stack_file(path: str | Path) -> None:
    """Remove the description (the stack is gone); a missing file is fine."""
    Path(path).unlink(missing_ok=True)
