"""Timeline rows are rendered once and kept: exact for what they were rendered from.

The rows of a visitor's timeline are kept per fetched copy of the visitor and per every
other input they read (filters, page, zone, what counts as new); anything that changes
one of those must show rows rendered afresh.
"""
from __future__ import annotations

from datetime import datetime, timedelta, timezone

import pytest

from dashboard import create_app
from dashboard.demo import LIVE_VISITOR_ID, FakeApiServer
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


@pytest.fixture
def fresh_agent(tmp_path, fake_api):
    """Logged in to a second app of its own: rows rendered there were never kept here."""
    folder = tmp_path / "fresh"
    folder.mkdir()
    app = create_app(make_settings(folder, fake_api.url))
    add_agent(app)
    auth = AuthActions(app, app.test_client())
    auth.login()
    yield auth.client
    app.extensions["db_engine"].dispose()


@pytest.mark.parametrize(
    "first, second",
    [
        ("", "?order=asc"),
        ("", "?q=cart"),
        ("?q=cart", "?q=product"),
        ("", "?at=2024-01-18T10:00:00Z"),
        ("?at=2024-01-18T10:00:00Z", "?at=2024-01-19T10:00:00Z"),
        ("", "?ticket=T-1"),
    ],
)
def test_other_filters_get_their_own_rows(logged_in, fresh_agent, first, second):
    url = "/visitors/visitor_123"
    kept_first = rows_of(logged_in.get(url + first).text)
    kept_second = rows_of(logged_in.get(url + second).text)
    assert kept_second == rows_of(fresh_agent.get(url + second).text)
    assert rows_of(logged_in.get(url + first).text) == kept_first == rows_of(fresh_agent.get(url + first).text)


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
        app = create_app(make_settings(tmp_path, api.url))
        add_agent(app)
        auth = AuthActions(app, app.test_client())
        auth.login()
        url = f"/visitors/{LIVE_VISITOR_ID}"
        before = row_times(auth.client.get(url).text)
        assert row_times(auth.client.get(url).text) == before  # cached copy, kept rows
        now[0] += timedelta(hours=1)
        after = row_times(auth.client.get(url + "?refresh=1").text)
        app.extensions["db_engine"].dispose()
    assert len(after) == len(before) > 0
    for (machine_before, _), (machine_after, _) in zip(before, after):
        shift = datetime.fromisoformat(machine_after.replace("Z", "+00:00")) - datetime.fromisoformat(machine_before.replace("Z", "+00:00"))
        assert shift == timedelta(hours=1)
