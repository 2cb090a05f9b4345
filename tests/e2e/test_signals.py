"""'What stands out' and 'Seen before in tickets' in a real browser: each signal, its links
to the rows, the panel after htmx swaps, the ticket history, and axe-core scans."""
from __future__ import annotations

import re

import pytest
from playwright.sync_api import Page, expect

from dashboard.demo.data import SIGNALS_CONTACT_AT, SIGNALS_VISITOR_ID
from tests.conftest import make_settings
from tests.e2e.conftest import log_in
from tests.e2e.test_support import assert_accessible

VIEW = f"/visitors/{SIGNALS_VISITOR_ID}"


@pytest.fixture
def settings(tmp_path, fake_api):
    """The default site (the environment's) links tickets through its template."""
    return make_settings(tmp_path, fake_api.url, postmetric_ticket_url_template="https://tickets.example.com/t/{ticket}")


def panel(page: Page):
    return page.get_by_role("region", name="What stands out")


def line(page: Page, text: str):
    return panel(page).get_by_role("listitem").filter(has_text=text)


def test_each_signal_is_named_and_links_to_its_rows(page: Page, live_server, artifacts):
    log_in(page, live_server.url, path=f"{VIEW}?at={SIGNALS_CONTACT_AT}")
    expect(panel(page)).to_be_visible()
    for text in (
        "Last page before contact: “Contact us” (/contact), 1 min before contact.",
        "Error page: “Payment failed” (/checkout/error).",
        "Error page: “Page not found” (/products/old-widget).",
        "Repeated attempts: “Checkout: payment” (/checkout/payment) 3 times within 5 min.",
        "Back and forth: 5 views alternating between “Your cart” (/cart) and “Shipping and delivery” (/shipping).",
        "Long stay: 16 min on “Pricing” (/pricing) before the next page.",
        "Sessions on 2 devices: desktop, mobile.",
    ):
        expect(line(page, text)).to_have_count(1)
    assert_accessible(page, "visitor with signals")
    page.screenshot(path=str(artifacts / "signals-1280.png"))

    # A link goes to its row in place: the address keeps the view and gains the row's anchor.
    line(page, "Long stay").get_by_role("link").click()
    expect(page).to_have_url(re.compile(r"#view-20240210t090500$"))
    target = page.locator("#view-20240210t090500")
    expect(target).to_be_in_viewport()
    expect(target.locator("xpath=..")).to_contain_text("Pricing")

    # The third payment try is the second view of a collapsed run: its entry opens.
    line(page, "Repeated attempts").get_by_role("link", name=re.compile("19:07")).click()
    expect(page).to_have_url(re.compile(r"#view-20240211t190700$"))
    expect(page.locator("#view-20240211t190700")).to_be_visible()


def test_the_panel_follows_htmx_swaps_and_reaches_rows_of_other_sessions(page: Page, live_server):
    log_in(page, live_server.url, path=VIEW)
    expect(line(page, "Long stay")).to_have_count(1)
    # Narrow to the mobile session (an htmx swap of the sessions and the timeline).
    page.locator("#filter-session").select_option("sess_signals_mobile")
    expect(page).to_have_url(re.compile(r"session=sess_signals_mobile"))
    expect(page.locator("#timeline")).to_have_attribute("data-session", "sess_signals_mobile")
    expect(line(page, "Long stay")).to_have_count(1)
    # The long stay was on the desktop: its link opens that session's view at the row.
    line(page, "Long stay").get_by_role("link").click()
    expect(page).to_have_url(re.compile(r"session=sess_signals_desktop#view-20240210t090500$"))
    expect(page.locator("#view-20240210t090500")).to_be_in_viewport()
    assert_accessible(page, "signals after narrowing")


def test_earlier_tickets_are_listed_and_linked(page: Page, live_server):
    log_in(page, live_server.url, path=f"{VIEW}?ticket=4521")
    expect(page.get_by_role("heading", name="Seen before in tickets")).to_have_count(0)
    page.goto(live_server.url + f"{VIEW}?ticket=4522")
    history = page.get_by_role("list", name="Seen before in tickets")
    expect(history.get_by_role("listitem")).to_have_count(1)
    expect(history).to_contain_text(re.compile(r"ticket 4521,\s+looked up by agent"))
    expect(history.get_by_role("link", name="ticket 4521")).to_have_attribute("href", "https://tickets.example.com/t/4521")
    assert_accessible(page, "ticket history")
