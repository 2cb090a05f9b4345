"""In a real browser: the pages work under the Content-Security-Policy (no violation, no
console error), a look-up across two sites names its site in the address bar, and an
admin's "Test connection" answers in place."""
from __future__ import annotations

import re

import pytest
from playwright.sync_api import Page, expect

from dashboard.demo import EXAMPLE_VISITOR_ID, FakeApiServer
from tests.conftest import LiveServer
from tests.e2e.conftest import session_links
from tests.support.accounts import ADMIN_EMAIL, ADMIN_PASSWORD, add_site, make_admin

SHOP_KEY = "pm_" + "c" * 64

WATCH_POLICY = """
window.__violations = [];
document.addEventListener("securitypolicyviolation", function (event) {
  window.__violations.push(event.violatedDirective + " " + (event.blockedURI || "inline"));
});
"""


@pytest.fixture
def admin_server(app):
    make_admin(app)
    with FakeApiServer(api_keys=[SHOP_KEY], visitors=[]) as shop_api:  # a second site that knows nobody
        add_site(app, "shop", "Shop", shop_api.url, SHOP_KEY)
        with LiveServer(app) as server:
            yield server


def test_pages_run_under_the_policy_and_the_url_names_the_site(page: Page, admin_server, artifacts):
    console_errors: list[str] = []
    page.on("console", lambda message: console_errors.append(message.text) if message.type == "error" else None)
    page.add_init_script(WATCH_POLICY)

    page.goto(admin_server.url + "/login")
    page.get_by_label("E-mail").fill(ADMIN_EMAIL)
    page.get_by_label("Password").fill(ADMIN_PASSWORD)
    page.get_by_role("button", name="Log in").click()
    expect(page.get_by_role("heading", name="Look up a visitor")).to_be_visible()

    # A ticket link names no site: both sites are asked, and the address bar then names
    # the one that knows the visitor.
    page.goto(f"{admin_server.url}/visitors/{EXAMPLE_VISITOR_ID}?ticket=T-1")
    expect(page.get_by_role("heading", name=re.compile(f"Visitor {EXAMPLE_VISITOR_ID}"))).to_be_visible()
    expect(page).to_have_url(re.compile(rf"/visitors/{EXAMPLE_VISITOR_ID}\?site=default&ticket=T-1$"))

    # htmx swaps under the policy: a search, a session, the filter.
    box = page.get_by_role("searchbox", name="Visitor ID")
    box.fill("visitor_huge")
    box.press("Enter")
    expect(page).to_have_url(re.compile(r"/visitors/visitor_huge\?site=default$"))
    session_links(page).first.click()
    expect(page).to_have_url(re.compile(r"session="))
    page.get_by_label("Filter by path or title").fill("checkout")
    expect(page.locator("#timeline .counts")).to_contain_text("match")
    page.screenshot(path=str(artifacts / "visitor-under-csp.png"), full_page=True)

    # The admin area, and "Test connection" swapped in place.
    page.get_by_role("link", name="Admin").click()
    expect(page.get_by_role("heading", name="Agents")).to_be_visible()
    page.get_by_role("navigation", name="Admin").get_by_role("link", name="Sites").click()
    page.get_by_role("button", name="Test connection of Default site").click()
    expect(page.locator("#connection-result-default")).to_contain_text("PostMetric accepted the key")
    expect(page.get_by_role("heading", name="PostMetric sites")).to_be_visible()  # no page load, no error page
    page.screenshot(path=str(artifacts / "admin-sites.png"), full_page=True)

    assert page.evaluate("window.__violations") == []
    assert console_errors == []
