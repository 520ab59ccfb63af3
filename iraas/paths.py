"""Where things are in a source checkout: the files the embedded stack reads."""

from __future__ import annotations

from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[1]
TEMPLATE = REPO_ROOT / "template.yaml"
CHALICE_PROJECT = REPO_ROOT / "chalice_web"
