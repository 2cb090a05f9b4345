"""Ticket moment, collapse, bounded pages, live refresh, exports, forgiving search, time
zones: the visitor view's support features through the test client, against the
stand-in on a real port."""
from __future__ import annotations

import csv
import io
import json
import re
import time
from urllib.parse import parse_qs, quote, urlsplit

import pytest
from sqlalchemy import select

from dashboard import create_app
from dashboard.demo import HUGE_VISITOR_ID, LARGE_VISITOR_ID, LIVE_VISITOR_ID, FakeApiServer
from dashboard.extensions import db
from dashboard.models import Agent, LookupEvent
from tests.conftest import AuthActions, add_agent, csrf_token_from, make_settings
from tests.support.html import attrs, one, soup, text_of, texts
from tests.support.views import fragment, timeline_rows

UUID = "3f2b8c1e-7a4d-4e9b-9c61-2d5f8a0b7e34"


# --- forgiving search -------------------------------------------------------------------


@pytest.mark.parametrize(
    "pasted",
    [
        f"_pm_sid=x; _pm_vid={UUID}; theme=dark",
        f"https://shop.example.com/checkout?_pm_vid={UUID}",
        f"https://lookup.example.com/visitors/{UUID}?at=2024-01-20T14:00:00Z",
        f"/visitor?visitorId={UUID}",
    ],
)
def test_search_takes_the_id_out_of_pasted_text(logged_in, pasted):
    home = logged_in.get("/?visitorId=" + quote(pasted, safe=""))
    assert home.status_code == 302 and home.headers["Location"] == f"/visitors/{UUID}"
    # The search box's htmx request: the view in place, the canonical URL pushed.
    response = fragment(logged_in, "/visitor?search=1&visitorId=" + quote(f"  {pasted} ", safe=""), "main")
    assert response.status_code == 200
    assert response.headers["HX-Push-Url"] == f"/visitors/{UUID}"
    assert texts(soup(response), "#visitor-heading code.visitor-id bdi") == [UUID]


def test_the_query_form_without_search_keeps_any_id_exactly(logged_in, fake_api):
    odd = "/visitors/not-a-link"
    response = logged_in.get("/visitor?visitorId=" + quote(odd, safe=""))
    assert response.status_code == 200
    assert fake_api.stats.calls_by_visitor[odd] == 1


@pytest.mark.parametrize("pasted,message", [("_pm_vid=", "Enter a visitor ID"), ("_pm_vid=" + "v" * 513, "513 characters")])
def test_a_search_that_yields_no_usable_id_is_refused_without_an_upstream_call(logged_in, fake_api, pasted, message):
    for url in ("/?visitorId=" + quote(pasted), "/visitor?search=1&visitorId=" + quote(pasted)):
        response = logged_in.get(url)
        assert response.status_code == 400 and message in response.text
    assert fake_api.stats.calls == 0


# --- the ticket moment ------------------------------------------------------------------


def test_ticket_moment_marks_labels_highlights_and_summarises(logged_in):
    html = logged_in.get("/visitors/visitor_123?at=2024-01-20T14:10:00Z&ticket=T-7").text
    page = soup(html)
    one(page, "#contact-marker")
    assert "When they wrote in" in html and "Was on “Your cart” (/cart), viewed 30 s before contact." in html
    assert "5 page views came after it." in html
    assert "4 min 30 s after contact" in html and "1 d 4 h before contact" in html
    assert texts(page, "span.tag.contact") == ["Last page before contact"]
    assert "/cart" in texts(one(page, "tr.view.last-before-contact"), "td")
    assert texts(page, "h2 bdi") == ["T-7"] and "ticket T-7" in text_of(page)


@pytest.mark.parametrize("order", ["asc", "desc"])
def test_the_marker_sits_between_before_and_after_in_both_orders(logged_in, order):
    page = soup(logged_in.get(f"/visitors/visitor_123?at=2024-01-20T14:10:00%2B00:00&order={order}"))
    marker, rows = one(page, "#contact-marker"), one(page, "#timeline-rows")

    def sides(labels) -> list[str]:  # "3 min after contact" -> "after"
        return [m.group(1) for label in labels if rows in label.parents and (m := re.search(r"(before|after) contact$", text_of(label)))]

    labels_first = sides(marker.find_all_previous("span", class_="relative"))
    labels_second = sides(marker.find_all_next("span", class_="relative"))
    expected_first = "before" if order == "asc" else "after"
    assert labels_first and set(labels_first) == {expected_first}
    assert labels_second and set(labels_second) == {"after" if order == "asc" else "before"}


def test_an_unreadable_ticket_moment_is_a_notice_not_an_error(logged_in):
    response = logged_in.get("/visitors/visitor_123?at=last%20tuesday")
    html = response.text
    assert response.status_code == 200
    assert "could not be read" in html and not soup(html).select("#contact-marker")
    assert timeline_rows(html) == 42


# --- collapse and paging ----------------------------------------------------------------


def test_repeated_views_collapse_into_one_expandable_row(logged_in):
    html = logged_in.get("/visitors/visitor_123").text
    page = soup(html)
    runs = attrs(page, "tr.view.run", "data-views")
    assert runs and all(int(n) > 1 for n in runs)
    assert texts(page, "tr.view.run details summary") == [f"{n} views in a row" for n in runs]
    assert timeline_rows(html) == 42  # every view is still there, inside its row


def test_load_more_continues_without_asking_postmetric_again(logged_in, fake_api):
    html = logged_in.get(f"/visitors/{LARGE_VISITOR_ID}").text
    load_more = one(soup(html), "#load-more [hx-get]")
    offset = int(parse_qs(urlsplit(load_more["hx-get"]).query)["offset"][0])
    assert timeline_rows(html) == offset
    more = fragment(logged_in, f"/visitors/{LARGE_VISITOR_ID}?offset={offset}", "load-more")
    assert one(soup(more), "#load-more [hx-get]")["hx-trigger"] == "click, revealed"
    assert json.loads(more.headers["HX-Trigger"])["announce"].endswith("of 1,000 shown.")
    assert fake_api.stats.calls == 1  # the cache served the second page


@pytest.fixture
def uncapped(tmp_path):
    """A stand-in without PostMetric's caps: visitor_huge returns 2,000 sessions and 20,000 views."""
    with FakeApiServer(caps=None) as api:
        app = create_app(make_settings(tmp_path, api.url, upstream_deadline=20.0, upstream_read_timeout=20.0))
        add_agent(app)
        client = app.test_client()
        AuthActions(app, client).login()
        yield client
        app.extensions["db_engine"].dispose()


def test_html_per_response_stays_bounded_for_the_biggest_visitor(uncapped):
    started = time.perf_counter()
    page = uncapped.get(f"/visitors/{HUGE_VISITOR_ID}")
    first = time.perf_counter() - started
    html = page.text
    assert page.status_code == 200 and "showing 20,000 of 20,000" not in html
    assert len(soup(html).select(".session-link")) == 20 and "Show 80 more sessions" in html
    assert "1,900 older sessions are not listed" in html
    more = fragment(uncapped, f"/visitors/{HUGE_VISITOR_ID}", "more-sessions").text
    assert len(soup(more).select(".session-link")) == 80 and "<html" not in more and "more-sessions" not in more
    sizes = {"page": len(page.data)}
    for target, url in (
        ("timeline", f"/visitors/{HUGE_VISITOR_ID}?q=a"),
        ("load-more", f"/visitors/{HUGE_VISITOR_ID}?offset=50"),
        ("load-more", f"/visitors/{HUGE_VISITOR_ID}?offset=19950"),
    ):
        started = time.perf_counter()
        sizes[f"{target}{url[-6:]}"] = len(fragment(uncapped, url, target).data)
        assert time.perf_counter() - started < 2.0
    print(f"\nvisitor_huge uncapped: first page {first:.2f} s; bytes {sizes}")
    assert sizes["page"] < 400_000
    assert all(size < 150_000 for name, size in sizes.items() if name != "page")


# --- live view --------------------------------------------------------------------------


def test_live_view_refreshes_from_postmetric_and_marks_new_views(logged_in, fake_api):
    page = soup(logged_in.get(f"/visitors/{LIVE_VISITOR_ID}?live=1"))
    assert one(page, "#live-toggle")["aria-pressed"] == "true"
    live = one(page, "[data-live]")
    assert live["hx-trigger"] == "every 15000ms, visibilitychange from:document"
    tick = live["hx-get"]
    assert "refresh=1" in tick and "since=" in tick and "live=1" in tick
    newest = re.search(r"since=([^&]+)", tick).group(1)
    # A tick that last looked long ago: every view of the live visitor is new to it.
    response = fragment(logged_in, tick.replace(newest, quote("2000-01-01T00:00:00Z")), "timeline")
    body = soup(response)
    assert fake_api.stats.calls == 2  # the tick asked PostMetric again (through the budget)
    assert response.headers["HX-Replace-Url"] == f"/visitors/{LIVE_VISITOR_ID}?live=1"
    assert re.search(r"\d+ new page views since the last update", text_of(one(body, "#timeline-counts")))
    assert texts(body, "span.tag.new").count("New") > 1


def test_live_is_only_offered_for_a_visitor_active_now(logged_in):
    html = logged_in.get("/visitors/visitor_123?live=1").text
    assert not soup(html).select("#live-toggle, [data-live]")
    assert "Live updates are for visitors active in the last 30 minutes" in html
    toggle = one(soup(logged_in.get(f"/visitors/{LIVE_VISITOR_ID}")), "#live-toggle")
    assert (toggle["class"], toggle["aria-pressed"], toggle["hx-get"]) == (["toggle"], "false", "/visitors/visitor_live?live=1")


# --- export -----------------------------------------------------------------------------


def test_csv_export_is_the_filtered_timeline_as_an_attachment(app, logged_in):
    response = logged_in.get("/visitor/export?visitorId=visitor_123&format=csv&q=checkout&order=asc&at=2024-01-20T14:10:00Z")
    assert response.status_code == 200
    assert response.mimetype == "text/csv"
    disposition = response.headers["Content-Disposition"]
    assert re.fullmatch(r'attachment; filename="visitor_123_timeline_\d{8}T\d{6}Z\.csv"', disposition)
    rows = list(csv.DictReader(io.StringIO(response.data.decode("utf-8-sig"))))
    assert rows and all("checkout" in (r["path"] + r["title"]).lower() for r in rows)
    assert [r["timestamp_utc"] for r in rows] == sorted(r["timestamp_utc"] for r in rows)
    assert all(r["relative_to_contact"].endswith("contact") for r in rows)
    with app.app_context():
        actions = db.session.scalars(select(LookupEvent.action)).all()
    assert "export" in actions


def test_json_export_and_a_hostile_visitor_in_csv(logged_in):
    response = logged_in.get("/visitor/export?visitorId=visitor_123&format=json&session=session_456")
    document = json.loads(response.data)
    assert response.mimetype == "application/json"
    assert document["visitorId"] == "visitor_123" and document["filters"] == {"session": "session_456"}
    assert document["exported"] == len(document["pageViews"]) > 0
    assert {v["session_id"] for v in document["pageViews"]} == {"session_456"}
    hostile = logged_in.get("/visitor/export?visitorId=visitor_hostile&format=csv")
    for row in csv.reader(io.StringIO(hostile.data.decode("utf-8-sig"))):
        assert not any(cell[:1] in "=+-@\t\r" and cell for cell in row)


def test_export_of_an_unknown_format_or_a_failed_lookup(logged_in):
    assert logged_in.get("/visitor/export?visitorId=visitor_123&format=xlsx").status_code == 404
    failed = logged_in.get("/visitor/export?visitorId=fail-401&format=csv")
    assert failed.status_code == 302 and failed.headers["Location"] == "/visitors/fail-401"


# --- share ------------------------------------------------------------------------------


def test_the_view_carries_its_link_and_a_ticket_summary(logged_in):
    page = soup(fragment(logged_in, "/visitors/visitor_123?q=cart&order=asc", "timeline"))
    copy = one(page, "[data-copy-kind=link]")
    assert copy["data-copy"] == "/visitors/visitor_123?q=cart&order=asc"
    summary = one(page, "pre#ticket-summary").get_text()
    assert "PostMetric visitor: visitor_123" in summary
    assert "Filtered: path or title contains “cart”, oldest first" in summary
    assert "Link: http://localhost/visitors/visitor_123?q=cart&order=asc" in summary
    assert "/visitor/export?visitorId=visitor_123&format=csv&q=cart&order=asc" in attrs(page, "a", "href")


# --- time zones -------------------------------------------------------------------------


def agent_zone(app) -> tuple[str, bool]:
    with app.app_context():
        agent = db.session.scalars(select(Agent)).one()
        return agent.timezone, agent.timezone_chosen


def test_login_takes_the_browsers_zone_until_the_agent_chooses_one(app, auth):
    auth.login(timezone="Europe/Berlin")
    assert agent_zone(app) == ("Europe/Berlin", False)
    html = auth.client.get("/visitors/visitor_123").text
    assert "2024-01-15 11:30:00 CET" in html  # first visit, 10:30 UTC
    times = soup(html).select("time")
    assert ("2024-01-15 10:30:00 UTC", "2024-01-15T10:30:00.000Z") in [(t["title"], t["datetime"]) for t in times]

    page = auth.client.get("/account").text
    assert attrs(soup(page), "option[selected]", "value") == ["Europe/Berlin"]
    saved = auth.client.post("/account", data={"timezone": "America/New_York", "csrf_token": csrf_token_from(page)})
    assert saved.status_code == 302
    assert agent_zone(app) == ("America/New_York", True)
    assert "2024-01-15 05:30:00 EST" in auth.client.get("/visitors/visitor_123").text

    auth.logout()
    auth.login(timezone="Asia/Tokyo")
    assert agent_zone(app) == ("America/New_York", True)  # a chosen zone stays


@pytest.mark.parametrize("zone", ["Mars/Olympus", "", "<script>"])
def test_the_account_page_refuses_a_zone_that_does_not_exist(app, logged_in, zone):
    page = logged_in.get("/account").text
    response = logged_in.post("/account", data={"timezone": zone, "csrf_token": csrf_token_from(page)})
    assert response.status_code == 400
    assert agent_zone(app) == ("UTC", False)


def test_a_bogus_browser_zone_at_login_is_ignored(app, auth):
    auth.login(timezone="Not/AZone")
    assert agent_zone(app) == ("UTC", False)
