"""The pages in a real browser: a uvicorn server on a free port of 127.0.0.1, driven by Playwright
with the operating system's Chromium (``/usr/bin/chromium``; .ci/run installs it).

The journeys of a coder and a compliance officer, and the accessibility basics on every page
they visit: a title, headings in order, labelled form fields, a search usable by keyboard.
"""

from __future__ import annotations

import re
import shutil
import socket
import threading
import time
from pathlib import Path

import pytest
import uvicorn
from playwright.sync_api import expect, sync_playwright

from kb.web import create_app
from tests.web_support import loaded_database

CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
                 "--disable-component-update", "--disable-sync", "--no-first-run"]


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


@pytest.fixture(scope="module")
def base_url(request, tmp_path_factory):
    """The loaded knowledge base served by uvicorn in a thread; stopped at the end of the module."""
    for url in loaded_database(request, "sqlite", tmp_path_factory):
        port = free_port()
        server = uvicorn.Server(uvicorn.Config(create_app(url), host="127.0.0.1", port=port, log_level="warning"))
        thread = threading.Thread(target=server.run, daemon=True)
        thread.start()
        deadline = time.monotonic() + 30
        while not server.started:
            assert thread.is_alive() and time.monotonic() < deadline, "the web server did not start"
            time.sleep(0.05)
        yield f"http://127.0.0.1:{port}"
        server.should_exit = True
        thread.join(timeout=10)


@pytest.fixture(scope="module")
def browser():
    if not CHROMIUM.exists():
        pytest.fail(f"the browser tests need Chromium at {CHROMIUM}: apt-get install -y chromium "
                    "(.ci/run installs it)", pytrace=False)
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
        yield browser
        browser.close()


@pytest.fixture
def page(browser, base_url):
    context = browser.new_context(base_url=base_url)
    page = context.new_page()
    page.set_default_timeout(15000)
    yield page
    context.close()


def check_accessibility_basics(page) -> None:
    """A title; one h1 first and no heading level skipped; every visible form field labelled."""
    assert page.title().strip(), page.url
    levels = page.eval_on_selector_all("h1, h2, h3, h4, h5, h6", "nodes => nodes.map(n => Number(n.tagName[1]))")
    assert levels and levels[0] == 1 and levels.count(1) == 1, (page.url, levels)
    for previous, current in zip(levels, levels[1:]):
        assert current <= previous + 1, (page.url, levels)
    unlabelled = page.eval_on_selector_all(
        "input:not([type=hidden]), select, textarea",
        "nodes => nodes.filter(n => !(n.labels && n.labels.length) && !n.getAttribute('aria-label')).map(n => n.outerHTML)")
    assert unlabelled == [], (page.url, unlabelled)


def test_a_coder_finds_g0156_and_asks_about_two_dates(page):
    page.goto("/search")
    check_accessibility_basics(page)
    page.get_by_label("Code, prefix or words of the description").press_sequentially("home health aide", delay=20)
    expect(page.locator("#live-hits a", has_text="G0156")).to_be_visible()  # as you type
    page.keyboard.press("Enter")  # and on submit
    expect(page.locator("#hits")).to_contain_text("G0156")
    check_accessibility_basics(page)
    page.locator("#hits a", has_text="G0156").click()
    expect(page).to_have_url(re.compile(r"/codes/G0156$"))
    check_accessibility_basics(page)
    expect(page.locator("#timeline svg g.version-bar")).to_have_count(1)
    expect(page.locator("#timeline svg path.known")).to_have_count(1)

    page.get_by_label("As of (effective date)").fill("2018-05-01")
    page.get_by_role("button", name="Show").click()
    expect(page).to_have_url(re.compile(r"/codes/G0156\?as_of=2018-05-01"))
    expect(page.locator("#answer")).to_have_text("G0156 was in effect on 2018-05-01: version 1")
    expect(page.locator("#timeline svg rect.version.in-force")).to_have_count(1)
    expect(page.locator("#timeline svg line.as-of")).to_have_count(1)

    page.get_by_label("As of (effective date)").fill("2005-01-01")
    page.get_by_role("button", name="Show").click()
    expect(page).to_have_url(re.compile(r"/codes/G0156\?as_of=2005-01-01"))
    expect(page.locator("#answer")).to_contain_text("existed on 2005-01-01 (added 1999-07-01)")
    expect(page.locator("#timeline svg rect.version.in-force")).to_have_count(0)


def test_the_search_is_usable_by_keyboard_alone(page):
    page.goto("/search")
    for _ in range(20):
        if page.evaluate("document.activeElement.id") == "q":
            break
        page.keyboard.press("Tab")
    assert page.evaluate("document.activeElement.id") == "q"
    page.keyboard.type("G0156")
    page.keyboard.press("Enter")
    expect(page.locator("#hits")).to_contain_text("G0156")
    for _ in range(40):
        if page.evaluate("document.activeElement.textContent") == "G0156" and \
                page.evaluate("document.activeElement.closest('#hits') !== null"):
            break
        page.keyboard.press("Tab")
    page.keyboard.press("Enter")
    expect(page.get_by_role("heading", level=1)).to_contain_text("G0156")


def test_a_compliance_officer_filters_the_2018_review_and_pages(page):
    page.goto("/review/2018")
    check_accessibility_basics(page)
    expect(page.get_by_role("heading", level=1)).to_have_text("Annual review 2018: what takes effect")
    page.get_by_label("Change type").select_option("discontinued")
    page.get_by_role("button", name="Filter").click()
    expect(page).to_have_url(re.compile(r"/review/2018\?.*change_type=discontinued"))
    check_accessibility_basics(page)
    summary = page.eval_on_selector_all("#summary tbody tr", "rows => rows.map(r => r.cells[1].textContent)")
    assert summary and set(summary) == {"Codes discontinued"}
    rows_on_first = page.locator("tr.change").count()
    assert rows_on_first == 100
    page.get_by_role("link", name="next page").first.click()
    expect(page).to_have_url(re.compile(r"/review/2018\?(?=.*change_type=discontinued)(?=.*page=2)"))
    expect(page.locator("nav.pager").first).to_contain_text("page 2 of 2")
    assert 0 < page.locator("tr.change").count() < 100
    assert set(page.eval_on_selector_all("tr.change", "rows => rows.map(r => r.dataset.type)")) == {"discontinued"}
    check_accessibility_basics(page)


def test_the_hipps_page_of_1fc11_shows_each_years_weight(page):
    page.goto("/hipps/1FC11")
    check_accessibility_basics(page)
    rows = page.locator("#years tr.year")
    expect(rows).to_have_count(7)
    expect(rows.nth(3)).to_contain_text("2023-01-01")
    expect(rows.nth(3)).to_contain_text("1.1009")
    expect(rows.nth(4)).to_contain_text("1.0929")
    expect(page.locator("#chart-weights svg rect.bar")).to_have_count(7)
    expect(page.locator("#positions")).to_contain_text("behavioral health")


@pytest.mark.parametrize("path", ["/", "/releases", "/diff/hcpcs?old=2017&new=2018", "/diff/hhpps?old=2023&new=2024",
                                  "/params/2024-03-01", "/params", "/cbsa/49700", "/rules", "/codes/G015X", "/nowhere"])
def test_every_page_has_the_accessibility_basics(page, path):
    response = page.goto(path)
    assert response.status < 500
    check_accessibility_basics(page)
    assert "Traceback" not in page.content()


def test_chromium_is_the_operating_systems(browser):
    assert shutil.which("chromium") == str(CHROMIUM) and browser.version
