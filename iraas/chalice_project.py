"""The Chalice project in ``chalice_web/``, loaded the way ``chalice local`` loads it.

One loader for the embedded web server, the WSGI adapter (gunicorn, OpenStack) and the tests: it
puts the project folder (for ``chalicelib``) and its ``vendor/`` on ``sys.path`` as chalice does.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

from iraas.paths import CHALICE_PROJECT

if TYPE_CHECKING:
    from chalice import Chalice
    from chalice.config import Config


def load_chalice_project(project_dir: Path = CHALICE_PROJECT, stage: str = "dev") -> tuple[Chalice, Config]:
    """The app and its stage's config."""
    from chalice.cli.factory import CLIFactory

    config = CLIFactory(project_dir=str(project_dir)).create_config_obj(chalice_stage_name=stage)
    return config.chalice_app, config
