"""A browser opening a visitor whose data must come from PostMetric gets the frame first
(the loading page), then the view from the page's own htmx request; everything else is as
before: cached data, scripts, htmx requests and the no-script variant answer in one go."""
from __future__ import annotations

import pytest
from sqlalchemy import select

from dashboard.extensions import db
from dashboard.models import LookupEvent
from tests.support.html import one, soup, text_of

BROWSER = {"Sec-Fetch-Dest": "document", "Sec-Fetch-Mode": "navigate"}


def fill_headers(page) -> dict[str, str]:
    """What htmx sends when the loading page's element asks for its view."""
    loading = one(soup(page), "#visitor-loading")
    assert loading["hx-trigger"] == "load" and loading["hx-target"] == "#main"
    return {"HX-Request": "true", "HX-Target": "main", "HX-Trigger": loading["id"], "HX-Current-URL": "http://localhost/"}


def events(app) -> list[LookupEvent]:
    with app.app_context():
        return list(db.session.scalars(select(LookupEvent).order_by(LookupEvent.id)))


def is_loading_page(response) -> bool:
    return soup(response).select_one("#visitor-loading") is not None


def test_the_loading_page_names_the_visitor_and_asks_nobody(app, logged_in, fake_api):
    page = logged_in.get("/visitors/visitor_123?ticket=4521&at=2024-01-20T14:22:00Z", headers=BROWSER)
    assert page.status_code == 200 and is_loading_page(page)
    document = soup(page)
    assert text_of(one(document, "#visitor-heading")) == "Visitor visitor_123"
    assert "Asking PostMetric…" in text_of(one(document, "#visitor-loading"))
    assert one(document, "title").get_text().startswith("visitor_123")
    assert one(document, "#search-visitor")["value"] == "visitor_123"
    # The view comes from the very same URL; without JavaScript, from its waiting variant.
    assert one(document, "#visitor-loading")["hx-get"] == "/visitors/visitor_123?ticket=4521&at=2024-01-20T14%3A22%3A00Z"
    assert 'content="0; url=/visitors/visitor_123?ticket=4521&amp;at=2024-01-20T14%3A22%3A00Z&amp;wait=1"' in page.get_data(as_text=True)
    assert fake_api.stats.calls == 0 and events(app) == []
    assert page.headers["Cache-Control"] == "no-store"


def test_the_view_it_fills_in_is_the_one_response_page_and_is_audited(app, logged_in, fake_api):
    url = "/visitors/visitor_123?ticket=4521"
    loading = logged_in.get(url, headers=BROWSER)
    view = logged_in.get(url, headers=fill_headers(loading))
    assert view.status_code == 200 and fake_api.stats.calls == 1
    # Its own history entry is already there: replace it, never push a second one.
    assert view.headers["HX-Replace-Url"] == url and "HX-Push-Url" not in view.headers
    [event] = events(app)
    assert (event.visitor_id, event.ticket, event.outcome) == ("visitor_123", "4521", "ok")
    # The same markup as the page in one response (which now comes from the cache, and says so).
    whole = logged_in.get(url, headers=BROWSER)
    assert not is_loading_page(whole) and fake_api.stats.calls == 1
    from_cache = one(soup(whole), "#main").decode_contents().strip()
    assert " (saved copy)" in from_cache
    assert from_cache.replace(" (saved copy)", "", 1) == soup(view).decode().strip()


def test_an_error_keeps_its_status_in_the_view_it_fills_in(logged_in):
    loading = logged_in.get("/visitors/fail-503", headers=BROWSER)
    assert loading.status_code == 200 and is_loading_page(loading)
    view = logged_in.get("/visitors/fail-503", headers=fill_headers(loading))
    assert view.status_code == logged_in.get("/visitors/fail-503?wait=1", headers=BROWSER).status_code == 503
    assert one(soup(view), "[data-error-kind]")["data-error-kind"] == "unavailable"


def test_a_refresh_paints_first_and_the_address_loses_refresh(logged_in, fake_api):
    logged_in.get("/visitors/visitor_123")  # cached now
    loading = logged_in.get("/visitors/visitor_123?refresh=1&order=asc", headers=BROWSER)
    assert is_loading_page(loading)
    view = logged_in.get("/visitors/visitor_123?refresh=1&order=asc", headers=fill_headers(loading))
    assert view.headers["HX-Replace-Url"] == "/visitors/visitor_123?order=asc"
    assert fake_api.stats.calls == 2


def test_the_query_form_paints_first_too(logged_in):
    odd = "odd/id ?#%&é"
    loading = logged_in.get("/visitor", query_string={"visitorId": odd}, headers=BROWSER)
    assert is_loading_page(loading)
    assert text_of(one(soup(loading), "#visitor-heading")) == f"Visitor {odd}"
    view = logged_in.get(one(soup(loading), "#visitor-loading")["hx-get"], headers=fill_headers(loading))
    assert view.status_code == 200 and one(soup(view), "#visitor-view")["data-visitor-id"] == odd


@pytest.mark.parametrize(
    ("url", "headers"),
    [
        ("/visitors/visitor_live", {}),  # a script, a monitor, curl: no browser navigation
        ("/visitors/visitor_live?wait=1", BROWSER),  # the no-script variant
        ("/visitors/visitor_live", {**BROWSER, "HX-Request": "true", "HX-Boosted": "true"}),
        ("/visitors/visitor_live", {**BROWSER, "HX-Request": "true", "HX-History-Restore-Request": "true"}),
        ("/visitors/visitor_live?site=no-such-site", BROWSER),  # nobody to ask: the answer is at hand
    ],
)
def test_other_requests_get_the_view_in_one_response(logged_in, url, headers):
    response = logged_in.get(url, headers=headers)
    assert not is_loading_page(response)
    assert soup(response).select_one("#visitor-view") is not None


def test_a_cached_visitor_is_one_response_for_a_browser_too(logged_in, fake_api):
    logged_in.get("/visitors/visitor_123")
    response = logged_in.get("/visitors/visitor_123?q=checkout", headers=BROWSER)
    assert not is_loading_page(response) and one(soup(response), "#timeline") is not None
    assert fake_api.stats.calls == 1
