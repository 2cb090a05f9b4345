"""The visitor view, full page and fragments, against the stand-in on a real port."""
from __future__ import annotations

import re
from urllib.parse import quote

import pytest

from dashboard.demo import DEMO_API_KEY, HOSTILE_VISITOR_ID, HUGE_TOTALS, HUGE_VISITOR_ID, LARGE_VISITOR_ID, ODD_VISITOR_ID
from tests.support.html import one, soup

HTMX = {"HX-Request": "true"}


def fragment(client, url, target, **headers):
    return client.get(url, headers={**HTMX, "HX-Target": target, **headers})


def timeline_rows(html: str) -> int:
    """Page views in the timeline (a collapsed row counts all the views it holds)."""
    return sum(int(row["data-views"]) for row in soup(html).select("tr.view"))


def view_times(html: str) -> list[str]:
    """The moment of each timeline row, in the order shown."""
    return [time["datetime"] for time in soup(html).select("td.time > time")]


def test_full_page_shows_summary_sessions_and_timeline(logged_in, fake_api):
    response = logged_in.get("/visitors/visitor_123")
    html = response.text
    assert response.status_code == 200
    assert html.startswith("<!doctype html>")
    assert "visitor_123" in html
    assert html.count('class="session-link"') == 5
    assert "42 page views" in html
    assert timeline_rows(html) == 42
    assert "Not in any known session" in html  # the stand-in's view outside every window
    assert "2024-01-15 10:30:00 UTC" in html  # first visit
    assert "Direct" in html  # a view without a referrer
    assert "United States" in html
    assert response.headers["Vary"].count("HX-Request") == 1
    assert fake_api.stats.calls == 1


def test_search_fragment_is_the_main_block_and_pushes_the_canonical_url(logged_in):
    response = fragment(logged_in, "/visitor?visitorId=%20visitor_123%20", "main")
    html = response.text
    assert response.status_code == 200
    assert "<html" not in html and "<header" not in html
    assert 'id="visitor-view"' in html
    assert response.headers["HX-Push-Url"] == "/visitors/visitor_123"
    assert "HX-Request" in response.headers["Vary"]


def test_history_restore_and_boosted_requests_get_the_full_page(logged_in):
    for headers in ({"HX-History-Restore-Request": "true"}, {"HX-Boosted": "true"}):
        response = logged_in.get("/visitors/visitor_123?session=session_456", headers={**HTMX, "HX-Target": "main", **headers})
        assert response.text.startswith("<!doctype html>")


def test_choosing_a_session_narrows_the_timeline_in_place(logged_in, fake_api):
    full = logged_in.get("/visitors/visitor_123").text
    session_id = re.search(r'href="/visitors/visitor_123\?session=([^"&]+)"', full).group(1)
    response = fragment(logged_in, f"/visitors/visitor_123?session={session_id}", "visitor-detail")
    html = response.text
    assert 'id="visitor-detail"' in html and "<html" not in html
    assert 0 < timeline_rows(html) < 42
    assert "Not in any known session" not in html
    assert f'href="/visitors/visitor_123?session={session_id}"' in html
    assert [link["data-session-id"] for link in soup(html).select('.session-link[aria-current="true"]')] == [session_id]
    assert response.headers["HX-Push-Url"] == f"/visitors/visitor_123?session={session_id}"
    # The same URL opened directly is the whole page, narrowed the same way.
    page = logged_in.get(f"/visitors/visitor_123?session={session_id}").text
    assert page.startswith("<!doctype html>") and timeline_rows(page) == timeline_rows(html)


def test_text_filter_and_order(logged_in):
    html = fragment(logged_in, "/visitors/visitor_123?q=CHECKOUT&order=asc", "timeline").text
    assert 'id="timeline"' in html and 'id="visitor-detail"' not in html
    rows = timeline_rows(html)
    assert 0 < rows < 42
    assert f"{rows} page view" in html and "CHECKOUT" in html
    times = view_times(html)
    assert times == sorted(times)
    newest_first = view_times(logged_in.get("/visitors/visitor_123?q=checkout").text)
    assert newest_first == sorted(newest_first, reverse=True)


def test_big_visitor_renders_a_first_page_and_loads_more_in_place(logged_in, fake_api):
    html = logged_in.get(f"/visitors/{LARGE_VISITOR_ID}").text
    assert timeline_rows(html) == 50
    assert "Load more (950 left)" in html
    more = fragment(logged_in, f"/visitors/{LARGE_VISITOR_ID}?offset=50", "load-more")
    chunk = more.text
    assert timeline_rows(chunk) == 50
    assert chunk.lstrip().startswith("<tr")
    assert "Load more (900 left)" in chunk
    assert "HX-Push-Url" not in more.headers
    last = fragment(logged_in, f"/visitors/{LARGE_VISITOR_ID}?offset=1000", "load-more").text
    assert "Load more" not in last


def test_counts_are_honest_when_arrays_are_capped(logged_in):
    html = logged_in.get(f"/visitors/{HUGE_VISITOR_ID}").text
    sessions, views = HUGE_TOTALS
    assert f"showing 100 of {sessions:,}" in html
    assert f"showing 1,000 of {views:,}" in html


@pytest.mark.parametrize("visitor_id", ["visitor_unknown", "fail-404"])
def test_unknown_visitor_has_its_own_state(logged_in, visitor_id):
    response = logged_in.get(f"/visitors/{visitor_id}")
    html = response.text
    assert response.status_code == 200
    assert "PostMetric has no data for this visitor" in html
    assert "Look again" in html


def test_query_form_renders_ids_a_path_cannot_hold(logged_in, fake_api):
    url = "/visitor?visitorId=" + quote(ODD_VISITOR_ID, safe="")
    response = logged_in.get(url)
    html = response.text
    assert response.status_code == 200
    assert 'id="visitor-heading"' in html
    assert fake_api.stats.calls_by_visitor[ODD_VISITOR_ID] == 1
    # Its session links stay in the query form.
    assert 'href="/visitor?visitorId=odd%2Fid+%3F%23%25%26%C3%A9&amp;session=' in html


@pytest.mark.parametrize("visitor_id", [".", "..", "a/b", "a\\b", "x?y", "x#y", "100%", "é"])
def test_every_id_has_a_url_that_opens_its_view(logged_in, fake_api, visitor_id):
    response = logged_in.get("/?visitorId=" + quote(visitor_id, safe=""))
    assert response.status_code == 302
    target = response.headers["Location"]
    assert target.startswith("/visitor?visitorId=")
    page = logged_in.get(target)
    assert page.status_code == 200
    assert fake_api.stats.calls_by_visitor[visitor_id] == 1


def test_path_safe_ids_redirect_to_the_canonical_path(logged_in):
    response = logged_in.get("/visitor?visitorId=visitor_123&session=s1&ticket=T-9")
    assert response.status_code == 302
    assert response.headers["Location"] == "/visitors/visitor_123?session=s1&ticket=T-9"
    home = logged_in.get("/?visitorId=%20%20visitor_123%0A")
    assert home.headers["Location"] == "/visitors/visitor_123"


@pytest.mark.parametrize("raw,message", [("", "Enter a visitor ID"), ("   ", "Enter a visitor ID"), ("x" * 513, "513 characters")])
def test_empty_and_overlong_ids_are_refused_without_an_upstream_call(logged_in, fake_api, raw, message):
    for url in (f"/?visitorId={raw}", f"/visitor?visitorId={raw}"):
        response = logged_in.get(url)
        assert response.status_code == 400
        assert message in response.text
    assert fake_api.stats.calls == 0


# Each upstream failure, full page and fragment: tests/integration/test_resilience.py.


def test_wrong_key_tells_the_agent_an_admin_must_fix_it(logged_in):
    html = logged_in.get("/visitors/fail-401").text
    assert "admin" in html.lower()
    assert "Try again" not in html  # retrying cannot help


def test_a_fragment_whose_data_failed_replaces_the_whole_view(logged_in):
    response = fragment(logged_in, "/visitors/fail-500?session=x", "visitor-detail")
    assert response.headers["HX-Retarget"] == "#main"
    assert response.status_code == logged_in.get("/visitors/fail-500").status_code != 200  # its real status
    assert one(soup(response), "[data-error-kind]")["data-error-kind"] == "server_error"


def test_hostile_visitor_is_escaped_and_inert(logged_in):
    html = logged_in.get(f"/visitors/{HOSTILE_VISITOR_ID}").text
    assert "<script>alert(1)</script>" not in html
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in html
    assert "<img src=x" not in html
    assert not re.search(r'href="\s*(javascript|vbscript|data):', html, re.IGNORECASE)
    assert "\u202e" not in html and "[U+202E]" in html
    assert "\x00" not in html and "\x07" not in html
    assert "49" not in re.findall(r"<bdi>([^<]*)</bdi>", html)  # {{ 7*7 }} was not evaluated
    assert 'rel="noopener noreferrer nofollow"' in html


def test_the_api_key_never_reaches_a_page(logged_in):
    pages = ["/", "/visitors/visitor_123", "/visitors/fail-401", "/visitors/fail-500", "/visitors/visitor_unknown", f"/visitors/{HOSTILE_VISITOR_ID}"]
    for url in pages:
        assert DEMO_API_KEY not in logged_in.get(url).text
        assert DEMO_API_KEY[-12:] not in fragment(logged_in, url, "main").text


def test_lookups_are_listed_on_the_home_page(logged_in):
    logged_in.get("/visitors/visitor_123")
    logged_in.get("/visitors/visitor_unknown")
    html = logged_in.get("/").text
    assert html.index("visitor_unknown") < html.index("visitor_123")


def test_no_configured_site_says_what_to_set(tmp_path, fake_api):
    from dashboard import create_app
    from tests.conftest import AuthActions, add_agent, make_settings

    app = create_app(make_settings(tmp_path, None))
    add_agent(app)
    client = app.test_client()
    AuthActions(app, client).login()
    response = client.get("/visitors/visitor_123")
    assert response.status_code == 503
    assert "POSTMETRIC_API_URL" in response.text
    app.extensions["db_engine"].dispose()


def test_long_session_lists_show_the_newest_first_and_the_rest_in_place(logged_in, fake_api):
    html = logged_in.get(f"/visitors/{LARGE_VISITOR_ID}").text
    assert html.count('class="session-link"') == 20
    assert 'id="more-sessions"' in html and "Show 80 more sessions" in html
    rest = fragment(logged_in, f"/visitors/{LARGE_VISITOR_ID}", "more-sessions")
    body = rest.text
    assert body.count('class="session-link"') == 80 and 'id="session-21"' in body and "<html" not in body
    assert "HX-Push-Url" not in rest.headers
    # Without JavaScript the link opens the page with every session listed.
    everything = logged_in.get(f"/visitors/{LARGE_VISITOR_ID}?sessions=all").text
    assert everything.count('class="session-link"') == 100 and 'id="more-sessions"' not in everything
    # A chosen session further down stays listed (and marked) on the short list.
    chosen = re.findall(r'data-session-id="([^"]+)"', body)[-1]
    narrowed = logged_in.get(f"/visitors/{LARGE_VISITOR_ID}?session={chosen}").text
    assert narrowed.count('class="session-link"') == 21 and f'data-session-id="{chosen}" aria-current="true"' in narrowed
    assert fake_api.stats.calls == 1
