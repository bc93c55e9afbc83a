"""The claims journey in a real browser (uvicorn on a free port of 127.0.0.1, Playwright with the
operating system's Chromium, as tests/test_web_browser.py): log in, upload the sample agency's
837I, the claims list, a claim's pricing trace, impact, the review signed off and its signed copy
checked; no beneficiary data in any page, URL or log line, and no Content-Security-Policy
violation on the way."""

from __future__ import annotations

import hashlib
import logging
import os
import re
import threading
import time

import pytest
import uvicorn
from playwright.sync_api import expect

from kb import accounts, database
from kb.database import transaction
from kb.sample_agency import synthetic_npi
from kb.web import create_app
from kb.web.auth import WebSettings
from tests.test_web_browser import browser, check_accessibility_basics, free_port  # noqa: F401 (fixture)
from tests.web_support import cli, loaded_database

PASSWORD = "correct-horse-battery"
AGENCY = synthetic_npi(1)


class Collected(logging.Handler):
    def __init__(self):
        super().__init__(logging.DEBUG)
        self.lines: list[str] = []

    def emit(self, record):
        self.lines.append(self.format(record))


@pytest.fixture(scope="module")
def served(request, tmp_path_factory):
    """The loaded knowledge base with an admin granted the sample agency, served by uvicorn (access
    log on, so that it can be checked); the 837I to upload and the names it carries."""
    os.environ.setdefault("HHKB_BENEFICIARY_KEY", "test-key-of-the-web-claims-tests")
    collected = Collected()
    for url in loaded_database(request, "sqlite", tmp_path_factory):
        sample = tmp_path_factory.mktemp("claims") / "sample-agency.837i"
        cli(url, "claims", "generate", "--periods", "30", "--year", "2024", "--out", str(sample))
        names = set()
        for segment in sample.read_text().split("~"):
            elements = segment.strip().split("*")
            if elements[0] == "NM1" and elements[1] in ("IL", "QC"):
                names.update(value for value in (elements[3], elements[4], elements[-1]) if len(value) > 3)
        engine = database.open_database(url)
        with transaction(engine) as session:
            accounts.add_account(session, "officer", PASSWORD, role="admin")
            accounts.grant(session, "officer", AGENCY)
        port = free_port()
        server = uvicorn.Server(uvicorn.Config(create_app(engine, WebSettings()), host="127.0.0.1", port=port,
                                               log_level="info", access_log=True))
        for name in ("", "uvicorn", "uvicorn.access", "uvicorn.error", "hhkb"):  # after uvicorn's own set-up
            logging.getLogger(name).addHandler(collected)
        thread = threading.Thread(target=server.run, daemon=True)
        thread.start()
        deadline = time.monotonic() + 30
        while not server.started:
            assert thread.is_alive() and time.monotonic() < deadline, "the web server did not start"
            time.sleep(0.05)
        yield f"http://127.0.0.1:{port}", sample, names, collected
        server.should_exit = True
        thread.join(timeout=10)
        engine.dispose()
    for name in ("", "uvicorn", "uvicorn.access", "uvicorn.error", "hhkb"):
        logging.getLogger(name).removeHandler(collected)


def test_login_upload_claims_trace_impact_and_sign_off(browser, served, tmp_path):  # noqa: F811
    base_url, sample, names, collected = served
    context = browser.new_context(base_url=base_url, accept_downloads=True)
    page = context.new_page()
    page.set_default_timeout(30000)
    urls, violations = [], []
    page.on("request", lambda request: urls.append(request.url))
    page.on("console", lambda message: violations.append(message.text)
            if "Content Security Policy" in message.text else None)
    texts = []

    page.goto("/account")
    expect(page).to_have_url(re.compile(r"/login$"))
    check_accessibility_basics(page)
    page.get_by_label("User name").fill("officer")
    page.get_by_label("Password").fill(PASSWORD)
    page.get_by_role("button", name="Log in").click()
    expect(page.locator("#account-role")).to_contain_text("admin")
    cookie = next(c for c in context.cookies() if c["name"] == "hhkb_session")
    assert cookie["httpOnly"] and cookie["sameSite"] == "Strict"

    page.get_by_role("link", name="upload claims").click()
    check_accessibility_basics(page)
    page.get_by_label("Claims file").set_input_files(str(sample))
    page.get_by_role("button", name="Upload").click()
    expect(page.locator("#upload-result")).to_contain_text("30")
    texts.append(page.content())

    page.locator("#to-claims").click()
    expect(page.locator("#claims-count")).to_contain_text("30 claims")
    check_accessibility_basics(page)
    texts.append(page.content())
    page.locator("#claims tbody a").first.click()
    expect(page).to_have_url(re.compile(rf"/agencies/{AGENCY}/claims/\d+$"))
    expect(page.locator("#price-total")).to_contain_text("Total")
    assert page.locator("#trace tr.step").count() > 3
    check_accessibility_basics(page)
    texts.append(page.content())

    page.goto(f"/agencies/{AGENCY}/impact?from_year=2023&to_year=2024")
    expect(page.locator("h1")).to_contain_text("Impact of the CY2024 HH PPS rules against CY2023")
    texts.append(page.content())

    page.goto(f"/agencies/{AGENCY}/review/2024")
    expect(page.locator("#not-signed")).to_be_visible()
    check_accessibility_basics(page)
    page.get_by_role("button", name=re.compile("Sign off this review")).click()
    expect(page.locator("#sign-offs li")).to_have_count(1)
    expect(page.locator("#sign-offs li")).to_contain_text("Signed by officer (admin)")
    texts.append(page.content())
    signed_hash = re.search(r"sha256 ([0-9a-f]{64})", page.locator("#sign-offs li").inner_text()).group(1)
    with page.expect_download() as download_info:
        page.locator("a.signed-copy").click()
    copy = tmp_path / "signed.json"
    download_info.value.save_as(copy)
    assert hashlib.sha256(copy.read_bytes()).hexdigest() == signed_hash

    assert violations == []
    context.close()
    assert names
    logs = "\n".join(collected.lines)
    assert "GET /agencies/" in logs  # the access log was collected
    for name in names:
        assert not any(name in url for url in urls)
        assert name not in logs
        assert not any(name in text for text in texts)
