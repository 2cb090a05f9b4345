"""The support features in a real browser: the URL after each interaction, reload and
back/forward, clipboard, downloads, live updates, keyboard and axe-core scans."""
from __future__ import annotations

import csv
import io
import json
import re

import pytest
from axe_playwright_python.sync_playwright import Axe
from playwright.sync_api import Page, expect

from dashboard.demo import LARGE_VISITOR_ID, LIVE_VISITOR_ID, RETURNING_VISITOR_ID
from tests.conftest import make_settings
from tests.e2e.conftest import log_in, session_links

AT = "2024-01-20T14:10:00Z"


@pytest.fixture
def settings(tmp_path, fake_api):
    # A short live interval, so the live test sees a few refreshes in a second or two.
    return make_settings(tmp_path, fake_api.url, live_refresh_seconds=0.7)


def assert_accessible(page: Page, where: str) -> None:
    results = Axe().run(page)
    assert results.violations_count == 0, f"{where}:\n{results.generate_report()}"


def views_shown(page: Page) -> int:
    return sum(int(n) for n in page.locator("#timeline tr.view").evaluate_all("rows => rows.map(r => r.dataset.views)"))


def counts(page: Page):
    return page.locator("#timeline-counts")


def test_login_and_home_are_accessible_and_search_forgives_what_is_pasted(page: Page, live_server, artifacts):
    page.goto(live_server.url + "/login")
    assert_accessible(page, "login")
    log_in(page, live_server.url)
    expect(page.get_by_role("heading", name="Look up a visitor")).to_be_visible()
    page.keyboard.press("/")
    box = page.get_by_role("searchbox", name="Visitor ID")
    expect(box).to_be_focused()
    box.fill(f"  _pm_sid=abc; _pm_vid={RETURNING_VISITOR_ID}; theme=dark ")
    box.press("Enter")
    expect(page).to_have_url(live_server.url + f"/visitors/{RETURNING_VISITOR_ID}")
    expect(page.get_by_role("heading", name=re.compile("Visitor 3f2b8c1e"))).to_be_focused()
    expect(box).to_have_value(RETURNING_VISITOR_ID)

    page.keyboard.press("/")
    box.fill(f"https://lookup.example.com/visitor?visitorId=visitor_123&at={AT}")
    box.press("Escape")
    expect(box).to_have_value("")
    box.fill("https://shop.example.com/cart?_pm_vid=visitor_123")
    box.press("Enter")
    expect(page).to_have_url(live_server.url + "/visitors/visitor_123")

    box.fill("_pm_vid=" + "x" * 600)
    box.press("Enter")
    expect(page.get_by_role("alert")).to_contain_text("600 characters")
    page.goto(live_server.url + "/")
    recent = page.get_by_role("list").filter(has_text="visitor_123")
    expect(recent.get_by_role("link")).to_have_count(2)
    assert_accessible(page, "home")
    page.screenshot(path=str(artifacts / "home-1280.png"))


def test_ticket_moment_marks_the_timeline_and_says_where_the_visitor_was(page: Page, live_server, artifacts):
    log_in(page, live_server.url, path=f"/visitors/visitor_123?at={AT}&ticket=T-7")
    expect(page.get_by_role("heading", name=re.compile("When they wrote in"))).to_be_visible()
    expect(page.locator("#contact-summary")).to_contain_text("Was on “Your cart” (/cart), viewed 30 s before contact.")
    marker = page.get_by_role("rowheader", name=re.compile("Contact"))
    expect(marker).to_be_visible()
    highlighted = page.locator("tr.last-before-contact")
    expect(highlighted).to_have_count(1)
    expect(highlighted).to_contain_text("Last page before contact")
    expect(highlighted).to_contain_text("30 s before contact")
    # Newest first: the row above the marker came after the contact.
    above = page.locator("#contact-marker").locator("xpath=preceding-sibling::tr[contains(@class,'view')][1]")
    expect(above).to_contain_text("after contact")
    assert_accessible(page, "visitor page with a ticket moment")
    for width, height in ((1280, 900), (390, 844)):
        page.set_viewport_size({"width": width, "height": height})
        marker.scroll_into_view_if_needed()
        page.screenshot(path=str(artifacts / f"ticket-moment-{width}.png"))
    page.emulate_media(color_scheme="dark")
    page.screenshot(path=str(artifacts / "ticket-moment-390-dark.png"))
    page.emulate_media(color_scheme="light")

    page.get_by_label("Order").select_option("asc")
    expect(page).to_have_url(re.compile(r"order=asc"))
    below = page.locator("#contact-marker").locator("xpath=following-sibling::tr[contains(@class,'view')][1]")
    expect(below).to_contain_text("after contact")
    page.reload()
    expect(page.get_by_role("rowheader", name=re.compile("^Contact"))).to_have_count(1)
    expect(page.get_by_label("Order")).to_have_value("asc")

    page.goto(live_server.url + "/visitors/visitor_123?at=not-a-time")
    expect(page.locator("#contact-notice")).to_contain_text("could not be read")


def test_filters_update_only_the_timeline_and_live_in_the_url(page: Page, live_server, artifacts):
    log_in(page, live_server.url, path="/visitors/visitor_123")
    base = live_server.url + "/visitors/visitor_123"
    page.evaluate("window.__noFullReload = true")
    heading = page.get_by_role("heading", name=re.compile("Visitor visitor_123"))
    heading.evaluate("h => { h.__kept = true; }")

    q = page.get_by_label("Filter by path or title")
    q.press_sequentially("check", delay=40)  # typed: one request after the pause, not one per key
    expect(page).to_have_url(base + "?q=check")
    expect(counts(page)).to_contain_text("page views match “check”")
    expect(page.locator("#announcer")).to_contain_text("page views match “check”")  # said aloud
    matching = views_shown(page)
    assert 0 < matching < 42
    expect(q).to_be_focused()

    page.get_by_label("Order").select_option("asc")
    expect(page).to_have_url(base + "?q=check&order=asc")
    session = page.get_by_label("Session", exact=True)
    session.select_option(index=2)
    expect(page).to_have_url(re.compile(r"\?session=[^&]+&q=check&order=asc$"))
    expect(session_links(page).and_(page.locator('[aria-current="true"]'))).to_have_count(1)
    expect(page.get_by_role("link", name=re.compile("^All sessions"))).not_to_have_attribute("aria-current", "true")
    narrowed = page.url
    assert page.evaluate("window.__noFullReload") is True
    assert heading.evaluate("h => h.__kept") is True  # the summary was not swapped
    assert_accessible(page, "visitor page after a filter swap")

    page.go_back()
    expect(page).to_have_url(base + "?q=check&order=asc")
    expect(session).to_have_value("")
    expect(page.get_by_label("Order")).to_have_value("asc")
    page.go_back()
    expect(page).to_have_url(base + "?q=check")
    expect(page.get_by_label("Order")).to_have_value("desc")
    expect(q).to_have_value("check")
    assert views_shown(page) == matching
    page.go_forward()
    page.go_forward()
    expect(page).to_have_url(narrowed)
    expect(page.get_by_label("Order")).to_have_value("asc")
    rows = views_shown(page)
    page.reload()
    expect(q).to_have_value("check")
    expect(page.get_by_label("Order")).to_have_value("asc")
    assert views_shown(page) == rows


def test_long_timelines_load_in_place_and_runs_expand(page: Page, live_server, fake_api):
    log_in(page, live_server.url, path=f"/visitors/{LARGE_VISITOR_ID}")
    first = views_shown(page)
    assert 50 <= first < 100
    more = page.get_by_role("link", name=re.compile(r"Load more"))
    more.focus()
    page.keyboard.press("Enter")
    expect(page.locator("#timeline-rows tr[id^=chunk-]")).to_have_count(1)
    expect(page.locator("#timeline-rows tr[id^=chunk-]")).to_be_focused()
    expect(page.locator("#announcer")).to_contain_text("more page views loaded")
    second = views_shown(page)
    assert second > first
    page.get_by_role("link", name=re.compile(r"Load more")).scroll_into_view_if_needed()
    expect(page.locator("#timeline-rows tr[id^=chunk-]")).to_have_count(2)  # loaded by scrolling
    assert views_shown(page) > second
    expect(page).to_have_url(live_server.url + f"/visitors/{LARGE_VISITOR_ID}")  # paging is no new view
    assert fake_api.stats.calls == 1

    page.goto(live_server.url + "/visitors/visitor_123")
    run = page.locator("tr.view.run").first
    toggle = run.get_by_text(re.compile(r"\d+ views in a row"))
    toggle.focus()
    page.keyboard.press("Enter")
    expect(run.locator("details.repeats li").first).to_be_visible()
    assert run.locator("details.repeats li time").count() == int(run.get_attribute("data-views"))


@pytest.mark.browser_context_args(permissions=["clipboard-read", "clipboard-write"])
def test_copy_buttons_and_exports(page: Page, browser, live_server, artifacts):
    log_in(page, live_server.url, path=f"/visitors/visitor_123?at={AT}")
    clipboard = lambda: page.evaluate("navigator.clipboard.readText()")  # noqa: E731
    page.get_by_role("button", name="Copy visitor ID").click()
    expect(page.get_by_role("button", name="Copy visitor ID")).to_have_text("Copied")
    assert clipboard() == "visitor_123"

    page.get_by_label("Filter by path or title").fill("checkout")
    expect(page).to_have_url(re.compile(r"q=checkout"))
    page.get_by_role("button", name="Copy link").click()
    link = clipboard()
    assert link == page.url
    assert re.fullmatch(re.escape(live_server.url) + r"/visitors/visitor_123\?q=checkout&at=2024-01-20T14(:|%3A)10(:|%3A)00Z", link)
    rows = views_shown(page)

    page.get_by_role("button", name="Copy summary").click()
    summary = clipboard()
    assert summary.startswith("PostMetric visitor: visitor_123\nFirst visit: 2024-01-15 10:30:00 UTC")
    assert "Was on “Your cart” (/cart), viewed 30 s before contact." in summary
    assert summary.endswith(f"Link: {link}")

    colleague = browser.new_context()
    other = colleague.new_page()
    try:
        log_in(other, live_server.url, path=link.removeprefix(live_server.url))
        expect(other).to_have_url(link)
        expect(other.get_by_label("Filter by path or title")).to_have_value("checkout")
        expect(other.get_by_role("rowheader", name=re.compile("^Contact"))).to_have_count(1)
        assert views_shown(other) == rows
    finally:
        colleague.close()

    with page.expect_download() as csv_download:
        page.get_by_role("link", name="Export CSV").click()
    download = csv_download.value
    assert re.fullmatch(r"visitor_123_timeline_\d{8}T\d{6}Z\.csv", download.suggested_filename)
    exported = list(csv.DictReader(io.StringIO(download.path().read_text(encoding="utf-8-sig"))))
    assert len(exported) == rows and all("checkout" in (r["path"] + r["title"]).lower() for r in exported)
    with page.expect_download() as json_download:
        page.get_by_role("link", name="Export JSON").click()
    document = json.loads(json_download.value.path().read_text(encoding="utf-8"))
    assert json_download.value.suggested_filename.endswith(".json")
    assert document["filters"] == {"q": "checkout", "at": AT} and document["exported"] == rows
    expect(page).to_have_url(link)  # downloading left the view alone


def test_live_view_refreshes_marks_new_views_and_stops_when_hidden(page: Page, live_server, fake_api):
    log_in(page, live_server.url, path=f"/visitors/{LIVE_VISITOR_ID}")
    toggle = page.get_by_role("button", name="Live")
    expect(toggle).to_have_attribute("aria-pressed", "false")
    calls = fake_api.stats.calls
    toggle.click()
    expect(page).to_have_url(live_server.url + f"/visitors/{LIVE_VISITOR_ID}?live=1")
    expect(toggle).to_have_attribute("aria-pressed", "true")
    expect(toggle).to_be_focused()  # the swap kept the agent's place
    # The stand-in's live visitor moves with the clock: the refresh finds a new view.
    expect(page.locator("#timeline .tag.new").first).to_be_visible(timeout=5000)
    expect(counts(page)).to_contain_text("since the last update")
    assert fake_api.stats.calls > calls
    assert_accessible(page, "live view")

    page.evaluate(
        """() => {
        let cancelled = 0;
        document.addEventListener("htmx:beforeRequest", (event) => {
            if (event.defaultPrevented && event.detail.elt.id === "timeline") document.body.dataset.cancelledTicks = ++cancelled;
        });
        Object.defineProperty(document, "hidden", {value: true, configurable: true});
        Object.defineProperty(document, "visibilityState", {value: "hidden", configurable: true});
        document.dispatchEvent(new Event("visibilitychange"));
    }"""
    )
    expect(page.locator("#live-status")).to_have_text("paused while this tab is hidden")
    expect(page.get_by_role("status").filter(has_text="Asking PostMetric")).to_be_hidden()  # none on its way
    hidden_calls = fake_api.stats.calls
    # Two more ticks come and are cancelled (0.7 s apart): time passed, and nothing was asked.
    expect(page.locator("body")).to_have_attribute("data-cancelled-ticks", re.compile(r"^([3-9]|\d\d+)$"))
    assert fake_api.stats.calls == hidden_calls

    with page.expect_response(re.compile(r"refresh=1")):  # caught up at once, not a tick later
        page.evaluate(
            """() => {
            Object.defineProperty(document, "hidden", {value: false, configurable: true});
            Object.defineProperty(document, "visibilityState", {value: "visible", configurable: true});
            document.dispatchEvent(new Event("visibilitychange"));
        }"""
        )
    assert fake_api.stats.calls > hidden_calls
    page.get_by_role("button", name="Live").click()
    expect(page).to_have_url(live_server.url + f"/visitors/{LIVE_VISITOR_ID}")
    expect(page.get_by_role("button", name="Live")).to_have_attribute("aria-pressed", "false")
    page.go_back()
    expect(page).to_have_url(re.compile(r"\?live=1$"))
    page.reload()
    expect(page.get_by_role("button", name="Live")).to_have_attribute("aria-pressed", "true")


@pytest.mark.browser_context_args(timezone_id="Europe/Berlin")
def test_time_zone_comes_from_the_browser_and_can_be_changed(page: Page, live_server):
    log_in(page, live_server.url, path="/visitors/visitor_123")
    first_visit = page.locator(".facts time").first
    expect(first_visit).to_have_text("2024-01-15 11:30:00 CET")
    expect(first_visit).to_have_attribute("datetime", "2024-01-15T10:30:00.000Z")
    expect(first_visit).to_have_attribute("title", "2024-01-15 10:30:00 UTC")

    page.get_by_role("link", name="Account", exact=True).click()
    zone = page.get_by_label("Time zone")
    expect(zone).to_have_value("Europe/Berlin")
    assert_accessible(page, "account page")
    zone.select_option("America/New_York")
    page.get_by_role("button", name="Save").click()
    expect(page.get_by_role("status").filter(has_text="America/New York")).to_be_visible()
    page.goto(live_server.url + "/visitors/visitor_123")
    expect(page.locator(".facts time").first).to_have_text("2024-01-15 05:30:00 EST")
