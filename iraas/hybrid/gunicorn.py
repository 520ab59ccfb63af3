"""The command that serves the web tier with gunicorn and ``openstack/gunicorn.conf.py``."""

from __future__ import annotations

import sys

from iraas.paths import REPO_ROOT

GUNICORN_CONFIG = REPO_ROOT / "openstack" / "gunicorn.conf.py"


def gunicorn_command(host: str, port: int, graceful_s: int = 4, python: str = sys.executable) -> list[str]:
    """gunicorn on ``host:port`` with the project's config (``openstack/wsgi.py``'s ``application``).

    The short graceful timeout fits ``iraas up``'s orderly stop (under 10 s); on Nova the config
    file's longer default lets waiting requests finish.
    """
    return [
        python, "-m", "gunicorn",
        "--config", str(GUNICORN_CONFIG),
        "--bind", f"{host}:{port}",
        "--graceful-timeout", str(graceful_s),
    ]
