"""Headless Chromium (Debian's ``chromium``, installed by ``make system-deps``) driven by Playwright."""

from __future__ import annotations

import contextlib
import os
import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest

from harness.embedded import running_stack
from iraas.config import REPO_ROOT

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


@pytest.fixture(scope="session")
def stack(tmp_path_factory, model_path):
    """`iraas up` with the default, scaled fleet (no worker runs until work arrives), shared by the
    page's tests that need no API key: one start for them all. Each test uses names of its own."""
    home = tmp_path_factory.mktemp("iraas-page")
    with running_stack(home, {"IRAAS_LOCAL_FUNCTION_CONCURRENCY": "1"}, workers=None) as running:
        yield running


@contextlib.contextmanager
def open_page(browser, url: str) -> Iterator:  # noqa: ANN001 - a Playwright Browser
    """A page at ``url`` in a fresh context; at the end, no console error but refused requests.

    A content security policy violation or a script error shows up as a console error; a refused
    request (a 4xx the page expects) only as "Failed to load resource".
    """
    context = browser.new_context(viewport={"width": 1280, "height": 900})
    page = context.new_page()
    problems: list[str] = []
    page.on("console", lambda message: problems.append(message.text) if message.type == "error" else None)
    page.on("pageerror", lambda error: problems.append(str(error)))
    page.goto(url)
    yield page
    context.close()
    assert not [p for p in problems if "Failed to load resource" not in p], problems


@pytest.fixture
def screenshot(request: pytest.FixtureRequest):
    """screenshot(page_or_locator, "name"): a PNG under build/screenshots (docs/api.md shows copies from docs/screenshots/)."""
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)

    def take(target, name: str) -> Path:  # noqa: ANN001 - a Playwright Page or Locator
        path = SCREENSHOTS / f"{name}.png"
        target.screenshot(path=str(path))
        return path

    return take
