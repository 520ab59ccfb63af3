"""The web page against a service that needs an API key: it asks for the key, keeps it for the tab,
and works once the key is entered (every call it makes sends x-api-key)."""

from __future__ import annotations

import pytest
from playwright.sync_api import expect

from harness.embedded import running_stack
from tests.browser.conftest import open_page

pytestmark = [pytest.mark.slow, pytest.mark.browser]

KEY = "page-test-key-0123456789abcdef"


@pytest.fixture(scope="module")
def stack(tmp_path_factory, model_path):
    home = tmp_path_factory.mktemp("iraas-page-key")
    with running_stack(home, {"IRAAS_API_KEY": KEY, "IRAAS_LOCAL_FUNCTION_CONCURRENCY": "1"}) as running:
        yield running


@pytest.fixture
def page(browser, stack):
    with open_page(browser, stack.url + "/") as page:
        yield page


def test_the_page_asks_for_the_key_and_works_once_it_is_entered(page, tmp_path, screenshot):
    form = page.locator("#key-form")
    expect(form).to_be_visible()
    expect(page.locator("#key-status")).to_have_text("This service needs an API key. Enter it to use the page.")
    expect(page.locator("#key-input")).to_be_focused()  # the first thing the keyboard reaches
    expect(page.locator("#students-status")).to_contain_text("needs an API key")
    screenshot(page.locator("main"), "api-key")

    page.fill("#key-input", KEY)
    page.click("#key-form button[type=submit]")

    expect(form).to_be_hidden()
    expect(page.locator("#students tbody")).to_have_text("No students yet.")
    expect(page.locator("#tile-workers")).to_contain_text("running", timeout=10_000)  # the dashboard's next reading
    notes = tmp_path / "notes.txt"
    notes.write_text("not a photo\n")
    page.set_input_files("#images", str(notes))  # an upload, with the key: the service's own answer
    card = page.locator(".card[data-state='error']")
    card.wait_for(timeout=30_000)
    assert "not an image" in card.locator(".state").inner_text()
    # The key is kept for this tab: a reload needs no second entry.
    page.reload()
    expect(page.locator("#students tbody")).to_have_text("No students yet.")
    expect(form).to_be_hidden()


def test_a_wrong_key_is_refused_and_asked_for_again(page):
    page.fill("#key-input", "not-the-key-0123456789")
    page.click("#key-form button[type=submit]")
    expect(page.locator("#key-status")).to_have_text("The service did not accept this API key. Enter the right one.")
    expect(page.locator("#key-form")).to_be_visible()
    page.fill("#key-input", KEY)
    page.click("#key-form button[type=submit]")
    expect(page.locator("#key-form")).to_be_hidden()
    expect(page.locator("#students tbody")).to_have_text("No students yet.")
