"""The admin pages in a real browser: axe-core finds nothing, light or dark; the audit
trail reads at phone width; a destructive action asks first and a "no" changes nothing."""
from __future__ import annotations

import re

import pytest
from playwright.sync_api import Page, expect

from tests.conftest import LiveServer, add_agent
from tests.e2e.test_layout import PHONE, assert_accessible_light_and_dark, no_horizontal_scroll
from tests.support.accounts import ADMIN_EMAIL, ADMIN_PASSWORD, make_admin


@pytest.fixture
def admin_live(app):
    make_admin(app)
    add_agent(app)
    with LiveServer(app) as server:
        yield server


def log_in_as_admin(page: Page, base_url: str) -> None:
    page.goto(base_url + "/login")
    page.get_by_label("E-mail").fill(ADMIN_EMAIL)
    page.get_by_label("Password").fill(ADMIN_PASSWORD)
    page.get_by_role("button", name="Log in").click()
    expect(page.get_by_role("heading", name="Look up a visitor")).to_be_visible()


def test_admin_pages_are_accessible_and_the_audit_trail_reads_on_a_phone(page: Page, admin_live, artifacts):
    log_in_as_admin(page, admin_live.url)
    page.goto(admin_live.url + "/visitors/visitor_123?ticket=T-9")  # something for the audit trail
    page.goto(admin_live.url + "/visitors/fail-500")
    for path, heading in (("/admin/agents", "Agents"), ("/admin/sites", "PostMetric sites"), ("/admin/audit", "Audit trail")):
        page.goto(admin_live.url + path)
        expect(page.get_by_role("heading", name=heading)).to_be_visible()
        assert_accessible_light_and_dark(page, path)

    expect(page.get_by_text("PostMetric had an internal error")).to_be_visible()  # a labelled badge, not a code
    page.get_by_role("link", name="visitor_123").click()
    expect(page).to_have_url(re.compile(r"/visitors/visitor_123\?site=default$"))

    page.set_viewport_size(PHONE)
    page.goto(admin_live.url + "/admin/audit")
    assert no_horizontal_scroll(page)
    cell = page.locator(".audit-table td[data-label='Agent']").first
    assert cell.evaluate("td => td.getBoundingClientRect().width") > 200  # no word split letter by letter
    expect(page.get_by_label("Visitor ID", exact=True).last).to_be_visible()
    assert_accessible_light_and_dark(page, "audit trail at 390 px")
    page.screenshot(path=str(artifacts / "audit-390.png"), full_page=True)


def test_disabling_asks_first_and_no_means_no(page: Page, admin_live):
    log_in_as_admin(page, admin_live.url)
    page.goto(admin_live.url + "/admin/agents")
    mine = page.get_by_role("row", name=re.compile(ADMIN_EMAIL))
    expect(mine.get_by_role("button", name=re.compile("^Disable"))).to_have_count(0)

    questions: list[str] = []
    page.evaluate("window.__same_page = true")
    page.once("dialog", lambda dialog: (questions.append(dialog.message), dialog.dismiss()))
    page.get_by_role("button", name="Disable: agent@example.com").click()  # waits for a navigation it starts
    assert page.evaluate("window.__same_page") is True  # nothing was sent
    expect(page.get_by_role("row", name=re.compile("agent@example.com")).get_by_role("cell", name="Active")).to_be_visible()
    assert questions and "agent@example.com" in questions[0]

    page.once("dialog", lambda dialog: dialog.accept())
    page.get_by_role("button", name="Disable: agent@example.com").click()
    expect(page.get_by_text("agent@example.com is disabled")).to_be_visible()
