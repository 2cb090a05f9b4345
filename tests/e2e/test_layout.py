"""Issue 12's layout in a real browser: a dense timeline, filters at hand, a title and
focus that follow the view, a filter that shows in the session list, and axe-core with
no violation in any state visited, light and dark."""
from __future__ import annotations

import re

from axe_playwright_python.sync_playwright import Axe
from playwright.sync_api import Page, expect

from dashboard.demo import LARGE_VISITOR_ID
from tests.e2e.conftest import log_in, session_links

DESKTOP = {"width": 1280, "height": 800}
PHONE = {"width": 390, "height": 844}


def assert_accessible_light_and_dark(page: Page, where: str) -> None:
    for scheme in ("light", "dark"):
        page.emulate_media(color_scheme=scheme)
        results = Axe().run(page)
        assert results.violations_count == 0, f"{where} ({scheme}):\n{results.generate_report()}"
    page.emulate_media(color_scheme="light")


def rows_in_view(page: Page) -> int:
    """Timeline rows wholly on screen, below the sticky filters."""
    return page.evaluate(
        """() => {
            const top = document.getElementById("filters").getBoundingClientRect().bottom;
            return [...document.querySelectorAll("#timeline tr.view")].filter(row => {
                const box = row.getBoundingClientRect();
                return box.top >= top - 1 && box.bottom <= window.innerHeight + 1;
            }).length;
        }"""
    )


def no_horizontal_scroll(page: Page) -> bool:
    return page.evaluate("() => document.documentElement.scrollWidth <= window.innerWidth")


def test_the_timeline_is_one_line_per_view_and_dense(page: Page, live_server, artifacts):
    page.set_viewport_size(DESKTOP)
    log_in(page, live_server.url, path="/visitors/visitor_123")
    rows = page.locator("#timeline tr.view")
    expect(rows.first).to_be_visible()
    line = page.locator("#timeline td.path").first.evaluate("td => parseFloat(getComputedStyle(td).lineHeight)")
    heights = rows.evaluate_all("rows => rows.map(r => r.getBoundingClientRect().height)")
    assert max(heights) < 2 * line, heights  # no row wraps onto a second line

    page.get_by_role("table").scroll_into_view_if_needed()
    page.evaluate("() => window.scrollTo(0, document.getElementById('timeline-rows').getBoundingClientRect().top + window.scrollY - 120)")
    assert rows_in_view(page) >= 15
    page.screenshot(path=str(artifacts / "dense-timeline-1280.png"))
    # The filters stay at hand while the timeline scrolls.
    expect(page.get_by_label("Filter by path or title")).to_be_in_viewport()

    # Referrers: the site's own pages as a path or "previous page", others as the host.
    ref = page.locator("#timeline td.ref a.referrer")
    expect(ref.filter(has_text="previous page").first).to_be_visible()
    external = ref.filter(has_text=re.compile(r"^[a-z0-9.-]+\.[a-z]+$")).first
    expect(external).to_have_attribute("title", re.compile(r"^https?://"))

    page.set_viewport_size(PHONE)
    expect(rows.first).to_be_visible()
    assert no_horizontal_scroll(page)
    facts = page.locator(".facts > div").evaluate_all("els => els.map(e => Math.round(e.getBoundingClientRect().top))")
    assert len(set(facts)) == 2  # four facts in two rows of two
    page.screenshot(path=str(artifacts / "dense-timeline-390.png"), full_page=True)


def test_the_filter_is_four_tab_presses_from_the_search_box(page: Page, live_server):
    page.set_viewport_size(DESKTOP)
    log_in(page, live_server.url, path="/visitors/visitor_123")
    page.get_by_role("searchbox", name="Visitor ID").focus()
    for _ in range(4):
        page.keyboard.press("Tab")
    expect(page.get_by_label("Filter by path or title")).to_be_focused()
    expect(page.get_by_role("button", name="Apply")).to_have_count(0)  # filters apply as they change


def test_the_filter_works_without_javascript(browser, live_server):
    context = browser.new_context(java_script_enabled=False)
    page = context.new_page()
    try:
        log_in(page, live_server.url, path="/visitors/visitor_123")
        page.get_by_label("Filter by path or title").fill("cart")
        page.get_by_role("button", name="Apply").click()
        expect(page).to_have_url(re.compile(r"/visitors/visitor_123\?q=cart&"))  # a plain GET form
        expect(page.locator("#timeline-counts")).to_contain_text("match “cart”")
    finally:
        context.close()


def test_the_title_and_focus_follow_every_in_place_change(page: Page, live_server):
    log_in(page, live_server.url)
    expect(page).to_have_title("Visitor Lookup")
    page.evaluate("window.__noFullReload = true")
    box = page.get_by_role("searchbox", name="Visitor ID")
    box.fill("visitor_123")
    box.press("Enter")
    expect(page).to_have_title("visitor_123 · Visitor Lookup")
    expect(page.get_by_role("heading", name=re.compile("Visitor visitor_123"))).to_be_focused()

    page.get_by_label("Filter by path or title").fill("cart")
    expect(page).to_have_title("visitor_123 · “cart” · Visitor Lookup")
    expect(page.get_by_label("Filter by path or title")).to_be_focused()
    session_links(page).first.click()
    expect(page).to_have_title("visitor_123 · “cart” · one session · Visitor Lookup")
    expect(session_links(page).first).to_be_focused()

    box.fill(LARGE_VISITOR_ID)
    box.press("Enter")
    expect(page).to_have_title(f"{LARGE_VISITOR_ID} · Visitor Lookup")
    assert page.evaluate("window.__noFullReload") is True
    page.go_back()
    expect(page).to_have_title(re.compile("^visitor_123 · "))

    page.goto(live_server.url + f"/visitors/{LARGE_VISITOR_ID}")
    more = page.get_by_role("link", name=re.compile(r"Show \d+ more sessions"))
    more.focus()
    page.keyboard.press("Enter")
    expect(page.locator("#session-21")).to_be_focused()


def test_a_filter_shows_in_the_session_list_and_the_rows(page: Page, live_server, artifacts):
    page.set_viewport_size(DESKTOP)
    log_in(page, live_server.url, path="/visitors/visitor_123")
    page.get_by_label("Filter by path or title").fill("check")
    expect(page.locator("#timeline-counts")).to_contain_text("match “check”")
    sessions = page.get_by_role("region", name="Sessions")
    expect(sessions.get_by_role("link", name=re.compile(r"^All sessions \(8 of 42 page views match\)"))).to_be_visible()
    counted = session_links(page).filter(has_text=re.compile(r"\d+ match"))
    unmatched = session_links(page).filter(has_text="no matches")
    expect(counted.first).to_be_visible()
    expect(unmatched.first).to_be_visible()
    colour = "a => getComputedStyle(a.querySelector('.session-start')).color"
    assert unmatched.first.evaluate(colour) != counted.first.evaluate(colour)  # dimmed
    marks = page.locator("#timeline mark")
    expect(marks.first).to_be_visible()
    assert {text.lower() for text in marks.all_inner_texts()} == {"check"}
    page.screenshot(path=str(artifacts / "filter-shows-everywhere.png"))

    page.get_by_label("Filter by path or title").fill("")
    expect(page.locator("#timeline mark")).to_have_count(0)
    expect(session_links(page).filter(has_text="no matches")).to_have_count(0)


def test_no_axe_violation_in_any_visited_state(page: Page, live_server):
    page.set_viewport_size(DESKTOP)
    log_in(page, live_server.url, path="/visitors/visitor_123")
    assert_accessible_light_and_dark(page, "visitor_123")
    page.get_by_label("Filter by path or title").fill("check")
    expect(page.locator("#timeline mark").first).to_be_visible()
    assert_accessible_light_and_dark(page, "visitor_123 filtered in place")
    session_links(page).nth(1).click()
    expect(page).to_have_url(re.compile(r"session="))
    assert_accessible_light_and_dark(page, "visitor_123 one session")
    page.goto(live_server.url + f"/visitors/{LARGE_VISITOR_ID}?q=product")
    expect(page.get_by_role("link", name=re.compile(r"Show \d+ more sessions"))).to_be_visible()
    assert_accessible_light_and_dark(page, "visitor_large?q=product")
    page.goto(live_server.url + "/visitors/visitor_123?at=2024-01-20T14:10:00Z&ticket=T-7")
    assert_accessible_light_and_dark(page, "visitor_123 with a ticket moment")
    page.goto(live_server.url + "/visitors/visitor_unknown")
    assert_accessible_light_and_dark(page, "unknown visitor")
    page.goto(live_server.url + "/visitors/fail-500")
    assert_accessible_light_and_dark(page, "upstream error")
    page.goto(live_server.url + "/")
    assert_accessible_light_and_dark(page, "home")
    page.set_viewport_size(PHONE)
    page.goto(live_server.url + "/visitors/visitor_123?q=cart")
    assert no_horizontal_scroll(page)
    assert_accessible_light_and_dark(page, "visitor_123 on a phone")
