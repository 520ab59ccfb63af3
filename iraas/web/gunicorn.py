"""The command that serves the web tier with gunicorn and ``openstack/gunicorn.conf.py``."""

from __future__ import annotations

import math
import sys

from iraas.config import REPO_ROOT

GUNICORN_CONFIG = REPO_ROOT / "openstack" / "gunicorn.conf.py"


def gunicorn_command(host: str, port: int, drain_s: float = 4.0, python: str = sys.executable) -> list[str]:
    """gunicorn on ``host:port`` with the project's config (``openstack/wsgi.py``'s ``application``).

    The short drain fits ``iraas up``'s orderly stop (under 10 s): waiting requests get ``drain_s``
    for their answers, then a 503 with Retry-After (the config's ``post_worker_init``), and
    gunicorn's graceful timeout leaves a second more to send those. On Nova the config file's longer
    defaults let waiting requests finish.
    """
    return [
        python, "-m", "gunicorn",
        "--config", str(GUNICORN_CONFIG),
        "--bind", f"{host}:{port}",
        "--graceful-timeout", str(math.ceil(drain_s) + 1),
        "--env", f"IRAAS_WEB_DRAIN_S={drain_s:g}",
    ]
