"""The working core in a real browser: log in, search, narrow, share, stay safe."""
from __future__ import annotations

import re

from playwright.sync_api import Page, expect

from dashboard.demo import HOSTILE_VISITOR_ID
from tests.e2e.conftest import log_in, session_links


def search(page: Page, visitor_id: str) -> None:
    box = page.get_by_role("searchbox", name="Visitor ID")
    box.fill(visitor_id)
    box.press("Enter")


def test_log_in_search_and_narrow_to_a_session(page: Page, live_server, artifacts):
    log_in(page, live_server.url)
    page.evaluate("window.__noFullReload = true")
    search(page, "visitor_123")
    expect(page).to_have_url(re.compile(r"/visitors/visitor_123$"))
    expect(page.get_by_role("heading", name=re.compile("Visitor visitor_123"))).to_be_visible()
    sessions = session_links(page)
    expect(sessions).to_have_count(5)
    expect(page.locator("#timeline-counts")).to_contain_text("42 page views")

    sessions.nth(1).click()
    expect(page).to_have_url(re.compile(r"/visitors/visitor_123\?session=[^&]+$"))
    expect(sessions.nth(1)).to_have_attribute("aria-current", "true")
    narrowed = page.locator("tr.view").count()
    assert 0 < narrowed < 41  # 42 views, two of them collapsed into one row
    assert page.evaluate("window.__noFullReload") is True  # swapped in place, no page load
    page.screenshot(path=str(artifacts / "visitor-123-session.png"), full_page=True)

    page.go_back()
    expect(page).to_have_url(re.compile(r"/visitors/visitor_123$"))
    expect(page.locator("#timeline-counts")).to_contain_text("42 page views")
    page.go_forward()
    expect(page).to_have_url(re.compile(r"\?session="))
    expect(page.locator("tr.view")).to_have_count(narrowed)


def test_a_shared_link_opens_the_same_view_after_login(page: Page, browser, live_server):
    log_in(page, live_server.url)
    page.goto(live_server.url + "/visitors/visitor_123")
    session_links(page).nth(2).click()
    expect(page).to_have_url(re.compile(r"\?session="))
    shared = page.url
    rows = page.locator("tr.view").count()

    colleague = browser.new_context()
    other = colleague.new_page()
    try:
        other.goto(shared)
        expect(other).to_have_url(re.compile(r"/login\?next="))
        log_in(other, live_server.url, path=shared.removeprefix(live_server.url))
        expect(other).to_have_url(shared)
        expect(other.locator("tr.view")).to_have_count(rows)
        expect(session_links(other).and_(other.locator('[aria-current="true"]'))).to_have_count(1)
    finally:
        colleague.close()


def test_hostile_visitor_runs_no_injected_script(page: Page, live_server):
    dialogs = []
    page.on("dialog", lambda dialog: (dialogs.append(dialog.message), dialog.dismiss()))
    log_in(page, live_server.url)
    search(page, HOSTILE_VISITOR_ID)
    expect(page.get_by_role("heading", name=re.compile("Visitor"))).to_be_visible()
    page.goto(page.url)  # and as a full page load: goto waits for "load", when every image has failed
    expect(page.locator("tr.view").first).to_be_visible()
    assert dialogs == []
    assert page.locator("#main script, #main img, #main iframe").count() == 0
    for href in page.locator("#main a[href]").evaluate_all("els => els.map(e => e.getAttribute('href'))"):
        assert not re.match(r"\s*(javascript|data|vbscript):", href, re.IGNORECASE)


def test_unknown_visitor_and_upstream_error_states_in_place(page: Page, live_server):
    log_in(page, live_server.url)
    search(page, "visitor_unknown")
    expect(page.get_by_role("heading", name="PostMetric has no data for this visitor")).to_be_visible()
    search(page, "fail-401")
    expect(page.get_by_role("alert")).to_contain_text("admin")
    page.evaluate("window.__noFullReload = true")
    with page.expect_response(re.compile(r"/visitor\?.*visitorId=fail-500")) as failed:
        search(page, "fail-500")
    assert failed.value.status >= 500  # its real status, and still swapped in place:
    expect(page.get_by_role("link", name="Try again")).to_be_visible()
    assert page.evaluate("window.__noFullReload") is True
    expect(page.get_by_role("searchbox", name="Visitor ID")).to_be_editable()
    page.get_by_role("link", name="Try again").click()  # a failed fragment's retry swaps in place too
    expect(page.get_by_role("heading", name="PostMetric had an internal error")).to_be_visible()
    assert page.evaluate("window.__noFullReload") is True
