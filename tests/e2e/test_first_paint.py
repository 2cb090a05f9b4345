"""A visitor URL opened directly paints its frame at once, then fills in when PostMetric answers."""
from __future__ import annotations

import re
from contextlib import contextmanager

import pytest
from axe_playwright_python.sync_playwright import Axe
from playwright.sync_api import Browser, Page, expect

from dashboard import create_app
from dashboard.demo import FakeApiServer
from tests.conftest import LiveServer, add_agent, make_settings
from tests.e2e.conftest import log_in, open_view

SLOW_SECONDS = 3.0


@contextmanager
def dashboard_before(tmp_path, latency: float):
    """A dashboard that waits long enough for a stand-in whose fail-slow takes 3 s and
    whose every answer takes ``latency`` seconds."""
    with FakeApiServer(slow_seconds=SLOW_SECONDS, latency=latency) as api:
        app = create_app(make_settings(tmp_path, api.url, upstream_deadline=10.0, upstream_read_timeout=8.0))
        add_agent(app)
        with LiveServer(app) as server:
            server.api = api
            yield server
        app.extensions["db_engine"].dispose()


@pytest.fixture
def slow_server(tmp_path):
    with dashboard_before(tmp_path, latency=0.2) as server:
        yield server


@pytest.fixture
def slower_server(tmp_path):
    """Each answer takes 0.8 s, so a look-up retried twice shows its retries for over a
    second: longer than the indicator's half-second poll can miss, however late the page
    starts polling."""
    with dashboard_before(tmp_path, latency=0.8) as server:
        yield server


def assert_accessible(page: Page, where: str) -> None:
    results = Axe().run(page)
    assert results.violations_count == 0, f"{where}:\n{results.generate_report()}"


def asking(page: Page):
    return page.get_by_role("status").filter(has_text="Asking PostMetric")


def test_a_slow_visitor_paints_its_frame_first_then_fills_in(page: Page, slow_server):
    log_in(page, slow_server.url)
    url = slow_server.url + "/visitors/fail-slow?ticket=T-4521"
    page.goto(url, wait_until="commit")
    # The frame, the ID and the indicator while PostMetric is still thinking.
    expect(page.get_by_role("heading", name="Visitor fail-slow")).to_be_visible(timeout=1000)
    expect(asking(page)).to_be_visible(timeout=1000)
    expect(page.get_by_role("searchbox", name="Visitor ID")).to_have_value("fail-slow")
    timing = page.evaluate("() => { const n = performance.getEntriesByType('navigation')[0]; return n.responseEnd - n.startTime; }")
    assert timing < SLOW_SECONDS * 1000 / 2, f"the frame came after {timing:.0f} ms"
    expect(page.get_by_role("region", name="Sessions")).to_have_count(0)
    assert page.title().startswith("fail-slow")
    assert_accessible(page, "loading")

    # Then the data, in place: the URL and the title stay, the indicator goes.
    expect(page.get_by_role("region", name="Sessions")).to_be_visible(timeout=SLOW_SECONDS * 1000 + 5000)
    expect(page.get_by_role("region", name=re.compile("^Page views"))).to_contain_text("42 page views")
    expect(asking(page)).to_have_count(0)
    expect(page).to_have_url(url)
    assert page.title().startswith("fail-slow")
    assert_accessible(page, "filled")
    # Back leaves the view (the fill replaced its history entry; it added none).
    page.go_back()
    expect(page).not_to_have_url(url)


def test_a_cached_visitor_comes_in_one_response(page: Page, slow_server):
    log_in(page, slow_server.url)
    open_view(page, slow_server.url + "/visitors/visitor_123")
    again = page.goto(slow_server.url + "/visitors/visitor_123?order=asc")
    assert again is not None and 'id="visitor-loading"' not in again.text() and 'id="timeline"' in again.text()
    expect(page.get_by_role("region", name="Sessions")).to_be_visible()


def test_the_indicator_shows_retries_and_an_error_state_keeps_its_status(page: Page, slower_server):
    log_in(page, slower_server.url)
    page.goto(slower_server.url + "/visitors/fail-flaky-2", wait_until="commit")
    expect(asking(page)).to_contain_text(re.compile(r"Retrying \(attempt [23]\)"), timeout=5000)
    expect(page.get_by_text(re.compile(r"PostMetric answered after 3 attempts"))).to_be_visible(timeout=10000)

    with page.expect_response(lambda r: "fail-500" in r.url and r.request.headers.get("hx-request") == "true") as answer:
        page.goto(slower_server.url + "/visitors/fail-500")
    # The view's own answer carries the status the one-response page has (not the 200 of
    # the page that painted first).
    assert answer.value.status == page.request.get(slower_server.url + "/visitors/fail-500").status >= 500
    expect(page.get_by_role("alert")).to_contain_text("PostMetric had an internal error")
    expect(page.get_by_role("link", name="Try again")).to_be_visible()
    assert_accessible(page, "error state")


def test_without_javascript_the_page_waits_for_the_data(browser: Browser, slow_server):
    context = browser.new_context(java_script_enabled=False)
    try:
        page = context.new_page()
        log_in(page, slow_server.url)
        page.goto(slow_server.url + "/visitors/visitor_live?ticket=T-1")
        expect(page.get_by_role("region", name="Sessions")).to_be_visible(timeout=5000)
        expect(page).to_have_url(re.compile(r"/visitors/visitor_live\?ticket=T-1&wait=1$"))
    finally:
        context.close()
