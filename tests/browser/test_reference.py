"""The API reference in headless Chromium against `iraas up`: reached from the page, it shows every
route of GET /openapi.json with its answers, within the content security policy."""

from __future__ import annotations

import pytest
import requests

from tests.browser.conftest import open_page

pytestmark = [pytest.mark.slow, pytest.mark.browser]


def test_the_reference_shows_every_route_of_the_document_and_its_answers(browser, stack, screenshot):
    document = requests.get(stack.url + "/openapi.json", timeout=10).json()
    expected = {
        f"{method.upper()} {path}": sorted(operation["responses"])
        for path, item in document["paths"].items()
        for method, operation in item.items()
    }

    with open_page(browser, stack.url + "/") as page:  # no console error: nothing the policy refused
        page.get_by_role("link", name="the API reference").click()
        page.wait_for_selector("#reference[data-state='done']")
        shown = page.evaluate(
            """[...document.querySelectorAll("section[id^='op-']")].map(s => [
                 s.querySelector("h3").textContent.replace(/\\s+/g, " ").trim(),
                 [...s.querySelectorAll(".responses dt")].map(dt => dt.textContent.trim()).sort(),
               ])"""
        )
        screenshot(page.locator("section[id^='op-']").first, "api-reference")

    assert dict(shown) == expected
