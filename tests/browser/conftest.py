"""Headless Chromium (Debian's ``chromium``, installed by ``make system-deps``) driven by Playwright."""

from __future__ import annotations

import os
import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest

from iraas.paths import REPO_ROOT

SCREENSHOTS = Path(os.environ.get("IRAAS_SCREENSHOTS", REPO_ROOT / "build" / "screenshots"))


def chromium_path() -> str | None:
    return os.environ.get("IRAAS_CHROMIUM") or shutil.which("chromium") or shutil.which("chromium-browser")


@pytest.fixture(scope="session")
def browser() -> Iterator:
    sync_api = pytest.importorskip("playwright.sync_api", reason="Playwright is not installed (requirements-dev.txt)")
    executable = chromium_path()
    if executable is None:
        pytest.skip("no chromium on PATH: `make system-deps` installs Debian's chromium (or set IRAAS_CHROMIUM)")
    with sync_api.sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=executable, headless=True)
        yield browser
        browser.close()


@pytest.fixture
def screenshot(request: pytest.FixtureRequest):
    """screenshot(page_or_locator, "name"): a PNG under build/screenshots (the README shows them)."""
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)

    def take(target, name: str) -> Path:  # noqa: ANN001 - a Playwright Page or Locator
        path = SCREENSHOTS / f"{name}.png"
        target.screenshot(path=str(path))
        return path

    return take
