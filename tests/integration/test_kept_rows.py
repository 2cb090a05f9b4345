"""Timeline rows are rendered once and kept: exact for what they were rendered from.

The rows of a visitor's timeline are kept per fetched copy of the visitor and per every
other input they read (filters, page, contact moment, highlighted text, referrers,
anchors, zone, what counts as new, script root); anything that changes one of those must
show rows rendered afresh, exactly as an app that never keeps any renders them.
"""
from __future__ import annotations

from datetime import datetime, timedelta, timezone

import pytest

from dashboard import create_app
from dashboard.demo import LIVE_VISITOR_ID, FakeApiServer
from dashboard.demo.data import SIGNALS_CONTACT_AT, SIGNALS_VISITOR_ID
from dashboard.formatting import format_datetime
from tests.conftest import AuthActions, add_agent, csrf_token_from, make_settings
from tests.support.html import soup
from tests.support.views import fragment


def row_times(html: str) -> list[tuple[str, str]]:
    """(machine time, shown time) of every page view in the timeline rows."""
    return [(t["datetime"], t.get_text(strip=True)) for t in soup(html).select("tr.view td.time > time")]


def test_kept_rows_follow_the_agents_new_zone(logged_in):
    before = row_times(logged_in.get("/visitors/visitor_123").text)
    assert before and all(shown.endswith("UTC") for _, shown in before)
    page = logged_in.get("/account").text
    assert logged_in.post("/account", data={"timezone": "America/New_York", "csrf_token": csrf_token_from(page)}).status_code == 302

    after = row_times(logged_in.get("/visitors/visitor_123").text)
    assert [machine for machine, _ in after] == [machine for machine, _ in before]
    for machine, shown in after:
        moment = datetime.fromisoformat(machine.replace("Z", "+00:00"))
        assert shown == format_datetime(moment, "America/New_York")


def rows_of(html: str) -> str:
    """The timeline rows' markup as rendered."""
    return str(soup(html).select_one("#timeline-rows"))


def logged_in_app(folder, api_url: str) -> tuple:
    """An app of its own in ``folder`` and a client logged in to it."""
    folder.mkdir(exist_ok=True)
    app = create_app(make_settings(folder, api_url))
    add_agent(app)
    auth = AuthActions(app, app.test_client())
    auth.login()
    return app, auth.client


@pytest.fixture
def fresh_agent(tmp_path, fake_api):
    """Logged in to a second app of its own: rows rendered there were never kept here."""
    app, client = logged_in_app(tmp_path / "fresh", fake_api.url)
    yield client
    app.extensions["db_engine"].dispose()


def assert_kept_as_fresh(kept_client, fresh_client, url: str, first: str, second: str, **request) -> tuple[str, str]:
    """Rows of ``url + first`` then ``url + second`` from the app that keeps rows, each
    equal to what an app that never kept any renders; returns both."""
    kept_first = rows_of(kept_client.get(url + first, **request).text)
    kept_second = rows_of(kept_client.get(url + second, **request).text)
    assert kept_second == rows_of(fresh_client.get(url + second, **request).text)
    assert rows_of(kept_client.get(url + first, **request).text) == kept_first == rows_of(fresh_client.get(url + first, **request).text)
    return kept_first, kept_second


SIGNALS_URL = f"/visitors/{SIGNALS_VISITOR_ID}"


@pytest.mark.parametrize(
    "url, first, second",
    [
        ("/visitors/visitor_123", "", "?order=asc"),
        ("/visitors/visitor_123", "", "?q=cart"),
        ("/visitors/visitor_123", "?q=cart", "?q=product"),
        ("/visitors/visitor_123", "", "?at=2024-01-18T10:00:00Z"),
        ("/visitors/visitor_123", "?at=2024-01-18T10:00:00Z", "?at=2024-01-19T10:00:00Z"),
        # The ticket shows in the rows only through the Load more link.
        ("/visitors/visitor_large", "", "?ticket=T-1"),
        # The rows' anchors (and the signals' links to them) and the ticket's moment.
        (SIGNALS_URL, "?ticket=T-1", f"?ticket=T-1&at={SIGNALS_CONTACT_AT}"),
        (SIGNALS_URL, f"?at={SIGNALS_CONTACT_AT}", f"?at={SIGNALS_CONTACT_AT}&order=asc"),
    ],
)
def test_other_filters_get_their_own_rows(logged_in, fresh_agent, url, first, second):
    kept_first, kept_second = assert_kept_as_fresh(logged_in, fresh_agent, url, first, second)
    assert kept_first != kept_second  # each case can tell rows kept for the wrong input


def test_the_highlighted_text_is_the_filters_own(logged_in, fresh_agent):
    """Two filters that keep the same views mark different text: "check" and "checkout"
    both keep exactly the checkout pages."""
    kept_short, kept_long = assert_kept_as_fresh(logged_in, fresh_agent, "/visitors/visitor_123", "?q=check", "?q=checkout")
    short, long = soup(kept_short), soup(kept_long)
    assert len(short.select("tr.view")) == len(long.select("tr.view")) > 0
    assert {m.get_text().casefold() for m in short.select("mark")} == {"check"}
    assert {m.get_text().casefold() for m in long.select("mark")} == {"checkout"}


def test_kept_rows_carry_their_referrers_and_anchors(logged_in, fresh_agent):
    """The "Came from" column's short forms and the rows' ids, kept as rendered fresh
    (the signals panel links those ids)."""
    page = logged_in.get(f"{SIGNALS_URL}?at={SIGNALS_CONTACT_AT}").text
    again = logged_in.get(f"{SIGNALS_URL}?at={SIGNALS_CONTACT_AT}").text
    fresh = fresh_agent.get(f"{SIGNALS_URL}?at={SIGNALS_CONTACT_AT}").text
    assert rows_of(again) == rows_of(page) == rows_of(fresh)
    rows = soup(again).select_one("#timeline-rows")
    assert "previous page" in rows.get_text()
    ids = {cell["id"] for cell in rows.select("td.time[id]")}
    links = {a["href"].partition("#")[2] for a in soup(again).select("#signals a[href*='#view-']")}
    assert links and links <= ids | {li["id"] for li in rows.select("li[id]")}


def test_what_counts_as_new_is_the_requests_own(tmp_path):
    """In live mode the rows mark views after ``since`` as new: another ``since`` is
    another set of marks. (The live visitor's views follow the stand-in's clock: one
    fixed clock for both apps.)"""
    now = datetime(2024, 3, 1, 12, 0, tzinfo=timezone.utc)
    with FakeApiServer(clock=lambda: now) as api:
        apps = [logged_in_app(tmp_path / name, api.url) for name in ("keeps", "fresh")]
        (_, kept), (_, fresh) = apps
        url = f"/visitors/{LIVE_VISITOR_ID}"
        times = sorted({machine for machine, _ in row_times(kept.get(url).text)}, reverse=True)
        assert len(times) >= 4
        early, late = (f"?live=1&since={times[i].replace('+', '%2B')}" for i in (3, 1))
        kept_early, kept_late = assert_kept_as_fresh(kept, fresh, url, early, late)
        for app, _ in apps:
            app.extensions["db_engine"].dispose()
    assert len(soup(kept_early).select("tr.is-new")) > len(soup(kept_late).select("tr.is-new")) > 0


def test_rows_under_another_script_root_link_under_it(logged_in, fresh_agent):
    """The same app reached under a prefix (a proxy's SCRIPT_NAME) builds its links and
    icons under that prefix."""
    url = "/visitors/visitor_large"
    plain = rows_of(logged_in.get(url).text)
    prefixed = rows_of(logged_in.get(url, base_url="http://localhost/lookup").text)
    assert prefixed == rows_of(fresh_agent.get(url, base_url="http://localhost/lookup").text)
    assert "/lookup/" in prefixed and "/lookup/" not in plain


def test_a_second_page_of_rows_is_not_the_first(logged_in):
    page = logged_in.get("/visitors/visitor_large").text
    first = row_times(page)
    more = soup(page).select_one("#load-more a")["href"]  # the page's own next offset
    second = row_times(fragment(logged_in, more, "load-more").text)
    assert second and not set(second) & set(first)


def test_a_refetched_visitor_shows_its_new_rows(tmp_path):
    """The live visitor's stand-in answers relative to its clock: a refresh after the clock
    moves brings every view an hour later, and the rows must say so."""
    now = [datetime(2024, 3, 1, 12, 0, tzinfo=timezone.utc)]
    with FakeApiServer(clock=lambda: now[0]) as api:
        app, client = logged_in_app(tmp_path / "keeps", api.url)
        url = f"/visitors/{LIVE_VISITOR_ID}"
        before = row_times(client.get(url).text)
        assert row_times(client.get(url).text) == before  # cached copy, kept rows
        now[0] += timedelta(hours=1)
        after = row_times(client.get(url + "?refresh=1").text)
        app.extensions["db_engine"].dispose()
    assert len(after) == len(before) > 0
    for (machine_before, _), (machine_after, _) in zip(before, after):
        shift = datetime.fromisoformat(machine_after.replace("Z", "+00:00")) - datetime.fromisoformat(machine_before.replace("Z", "+00:00"))
        assert shift == timedelta(hours=1)
