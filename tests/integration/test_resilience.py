"""PostMetric failing, slow or rate-limiting: every outcome has a designed answer."""
from __future__ import annotations

import logging
import re
import threading
import time
from contextlib import contextmanager

import pytest

from dashboard import create_app
from dashboard.demo import DEMO_API_KEY, FakeApiServer
from dashboard.postmetric.cache import VisitorCache
from tests.conftest import AuthActions, LiveServer, add_agent, make_settings
from tests.support.clocks import FakeClock
from tests.support.html import one, soup
from tests.support.serving import logged_in_session
from tests.support.sockets import closed_port, unaccepting_port
from tests.support.upstream import spend_the_key_elsewhere

HTMX_MAIN = {"HX-Request": "true", "HX-Target": "main"}


@contextmanager
def dashboard(tmp_path, api_url, **changes):
    """An app on ``api_url`` with a logged-in test client."""
    app = create_app(make_settings(tmp_path, api_url, **changes))
    add_agent(app)
    client = app.test_client()
    AuthActions(app, client).login()
    try:
        yield app, client
    finally:
        app.extensions["db_engine"].dispose()


def error_kind(html: str) -> str | None:
    state = soup(html).select_one("[data-error-kind]")
    return state["data-error-kind"] if state else None


def offers_retry(document) -> bool:
    return any(link.get_text(strip=True) == "Try again" for link in document.select("a[hx-get]"))


def check_both_renders(client, visitor_id: str, kind: str, *, retry: bool) -> None:
    """The full page and the htmx fragment both show the designed state for ``kind``,
    with the same real status (the page's responseHandling swaps the fragment anyway)."""
    page = client.get(f"/visitors/{visitor_id}")
    document = soup(page)
    assert 400 <= page.status_code < 600 and page.status_code != 500
    assert error_kind(page.get_data(as_text=True)) == kind, page.get_data(as_text=True)[-1500:]
    assert "Traceback" not in document.get_text()
    assert document.select_one("#search-visitor") is not None  # the page around it still works
    assert offers_retry(document) is retry
    fragment = client.get(f"/visitor?visitorId={visitor_id}", headers=HTMX_MAIN)
    body = soup(fragment)
    assert fragment.status_code == page.status_code
    assert body.select_one("html, header, #search-visitor") is None
    assert one(body, "[data-error-kind]")["data-error-kind"] == kind
    assert offers_retry(body) is retry


@pytest.mark.parametrize(
    "visitor_id,kind,retry",
    [
        ("fail-400", "bad_request", False),
        ("fail-401", "unauthorized", False),
        ("fail-403", "forbidden", False),
        ("fail-404-html", "not_found_endpoint", False),
        ("fail-429", "rate_limited", True),
        ("fail-429-bare", "rate_limited", True),
        ("fail-500", "server_error", True),
        ("fail-502", "deadline", True),
        ("fail-503", "unavailable", True),
        ("fail-504", "deadline", True),
        ("fail-empty", "invalid_response", True),
        ("fail-truncated", "invalid_response", True),
        ("fail-html", "invalid_response", True),
        ("fail-wrong-types", "invalid_response", False),  # wrong shapes: asking again gives the same
        ("fail-sessions-object", "invalid_response", False),
        ("fail-null-entries", "invalid_response", False),
        ("fail-huge-body", "too_large", False),
        ("fail-slow", "timeout", True),
        ("fail-drop", "deadline", True),
    ],
)
def test_each_upstream_outcome_on_the_page_and_in_a_fragment(tmp_path, visitor_id, kind, retry):
    # A fresh stand-in per case: the 429 cases would otherwise close the shared
    # stand-in's key for the rest of the run.
    with FakeApiServer(slow_seconds=3.0) as api, dashboard(tmp_path, api.url) as (_, client):
        check_both_renders(client, visitor_id, kind, retry=retry)


def test_body_over_the_configured_cap_is_refused_without_reading_it_all(tmp_path, fake_api):
    with dashboard(tmp_path, fake_api.url, upstream_max_body_bytes=64 * 1024) as (_, client):
        html = client.get("/visitors/visitor_large").get_data(as_text=True)  # ~300 KB of JSON
    assert error_kind(html) == "too_large" and "64 KiB" in html


def test_connection_refused(tmp_path):
    with dashboard(tmp_path, f"http://127.0.0.1:{closed_port()}") as (_, client):
        check_both_renders(client, "visitor_123", "deadline", retry=True)
        assert "refused the connection" in client.get("/visitors/visitor_123").get_data(as_text=True)


def test_dns_failure(tmp_path):
    with dashboard(tmp_path, "http://visitor-lookup-test.invalid") as (_, client):
        check_both_renders(client, "visitor_123", "deadline", retry=True)
        assert "could not be resolved" in client.get("/visitors/visitor_123").get_data(as_text=True)


def test_connect_timeout(tmp_path):
    with unaccepting_port() as port, dashboard(tmp_path, f"http://127.0.0.1:{port}", upstream_connect_timeout=0.3) as (_, client):
        html = client.get("/visitors/visitor_123").get_data(as_text=True)
        assert error_kind(html) in {"connect_timeout", "deadline"}
        assert "did not accept a connection" in html
        fragment = client.get("/visitor?visitorId=visitor_123", headers=HTMX_MAIN).get_data(as_text=True)
        assert "did not accept a connection" in fragment and "Try again" in fragment


def test_read_timeout_says_how_long_it_waited(tmp_path, fake_api):
    with dashboard(tmp_path, fake_api.url) as (_, client):
        check_both_renders(client, "fail-slow", "timeout", retry=True)
        assert "did not answer within 1 s." in client.get("/visitors/fail-slow").get_data(as_text=True)


def test_a_flaky_upstream_is_retried_until_it_answers(tmp_path, fake_api):
    with dashboard(tmp_path, fake_api.url, upstream_deadline=5.0) as (_, client):
        html = client.get("/visitors/fail-flaky-2").get_data(as_text=True)
    assert fake_api.stats.calls_by_visitor["fail-flaky-2"] == 3
    assert "answered after 3 attempts" in html
    assert 'class="session-link"' in html


def test_an_upstream_that_always_fails_gives_up_at_the_deadline(tmp_path, fake_api):
    with dashboard(tmp_path, fake_api.url, upstream_deadline=1.5) as (_, client):
        started = time.monotonic()
        html = client.get("/visitors/fail-502").get_data(as_text=True)
        elapsed = time.monotonic() - started
    assert error_kind(html) == "deadline"
    assert fake_api.stats.calls_by_visitor["fail-502"] >= 2
    assert elapsed < 1.5 + 1.0


def test_client_errors_are_never_retried(tmp_path, fake_api):
    with dashboard(tmp_path, fake_api.url) as (_, client):
        for visitor_id in ("fail-400", "fail-401", "fail-403", "fail-500"):
            client.get(f"/visitors/{visitor_id}")
            assert fake_api.stats.calls_by_visitor[visitor_id] == 1


def test_retrying_is_shown_while_it_happens(tmp_path):
    """The progress endpoint the indicator polls reports the retry in flight."""
    with FakeApiServer() as api, dashboard(tmp_path, api.url, upstream_deadline=8.0) as (app, client):
        progress_client = app.test_client()
        AuthActions(app, progress_client).login()
        seen = []
        done = threading.Event()

        def poll():
            while not done.is_set():
                text = progress_client.get("/lookups/progress").get_data(as_text=True)
                if text:
                    seen.append(text)
                time.sleep(0.05)

        poller = threading.Thread(target=poll)
        poller.start()
        try:
            html = client.get("/visitors/fail-flaky-3").get_data(as_text=True)
        finally:
            done.set()
            poller.join()
    assert "answered after 4 attempts" in html
    assert any("Retrying (attempt" in text and "HTTP 503" in text for text in seen)
    assert client.get("/lookups/progress").get_data(as_text=True) == ""


# -- the cache ---------------------------------------------------------------------


def test_second_look_and_every_fragment_come_from_the_cache(logged_in, fake_api):
    logged_in.get("/visitors/visitor_123")
    assert fake_api.stats.calls == 1
    html = logged_in.get("/visitors/visitor_123").get_data(as_text=True)
    assert "(saved copy)" in html
    for url, target in [
        ("/visitors/visitor_123?session=x", "visitor-detail"),
        ("/visitors/visitor_123?q=cart", "timeline"),
        ("/visitors/visitor_123?order=asc", "timeline"),
        ("/visitors/visitor_123?offset=10", "load-more"),
    ]:
        assert logged_in.get(url, headers={"HX-Request": "true", "HX-Target": target}).status_code == 200
    assert fake_api.stats.calls == 1


def test_refresh_fetches_anew_and_says_how_old_the_data_is(logged_in, fake_api):
    logged_in.get("/visitors/visitor_123")
    response = logged_in.get("/visitors/visitor_123?refresh=1", headers=HTMX_MAIN)
    assert fake_api.stats.calls == 2
    html = response.get_data(as_text=True)
    assert "Data as of" in html and "(saved copy)" not in html
    assert response.headers["HX-Replace-Url"] == "/visitors/visitor_123"


def test_a_refresh_opened_as_a_page_asks_the_browser_to_drop_refresh_from_the_address(logged_in, fake_api):
    html = logged_in.get("/visitors/visitor_123?refresh=1&ticket=T-1").get_data(as_text=True)
    assert 'data-canonical-url="/visitors/visitor_123?ticket=T-1"' in html
    plain = logged_in.get("/visitors/visitor_123?ticket=T-1").get_data(as_text=True)
    assert "data-canonical-url" not in plain


def test_cached_data_expires(tmp_path, fake_api):
    with dashboard(tmp_path, fake_api.url, visitor_cache_ttl=30) as (app, client):
        clock = FakeClock()
        app.extensions["visitor_service"].cache = VisitorCache(ttl=30, clock=clock)
        client.get("/visitors/visitor_123")
        clock.advance(29)
        client.get("/visitors/visitor_123")
        assert fake_api.stats.calls == 1
        clock.advance(2)
        client.get("/visitors/visitor_123")
        assert fake_api.stats.calls == 2


def test_errors_are_not_cached(logged_in, fake_api):
    logged_in.get("/visitors/fail-500")
    logged_in.get("/visitors/fail-500")
    assert fake_api.stats.calls_by_visitor["fail-500"] == 2


def test_a_failed_refresh_shows_the_saved_copy_clearly_marked(tmp_path):
    api = FakeApiServer().start()
    try:
        with dashboard(tmp_path, api.url) as (_, client):
            client.get("/visitors/visitor_123")
            api.stop()  # PostMetric goes away
            html = client.get("/visitors/visitor_123?refresh=1").get_data(as_text=True)
            assert "Showing saved data." in html
            assert "refused the connection" in html
            assert 'class="session-link"' in html
    finally:
        api.stop()


def test_concurrent_lookups_of_one_visitor_make_one_upstream_call(tmp_path):
    with FakeApiServer(latency=0.4) as api:
        app = create_app(make_settings(tmp_path, api.url, upstream_read_timeout=5.0, upstream_deadline=5.0))
        add_agent(app)
        with LiveServer(app) as server:
            sessions = [logged_in_session(server.url) for _ in range(20)]
            statuses = []
            barrier = threading.Barrier(len(sessions))

            def look(session):
                barrier.wait()
                statuses.append(session.get(f"{server.url}/visitors/visitor_123", timeout=10).status_code)

            threads = [threading.Thread(target=look, args=(s,)) for s in sessions]
            for thread in threads:
                thread.start()
            for thread in threads:
                thread.join()
            for session in sessions:
                session.close()
        app.extensions["db_engine"].dispose()
        assert statuses == [200] * 20
        assert api.stats.calls == 1


# -- the rate budget ---------------------------------------------------------------


def test_after_a_429_no_call_is_made_until_the_reset(tmp_path):
    with FakeApiServer(rate_limit=3) as api, dashboard(tmp_path, api.url) as (_, client):
        spend_the_key_elsewhere(api, 3)
        first = client.get("/visitors/visitor_live").get_data(as_text=True)  # 429, Retry-After: the window's end
        assert error_kind(first) == "rate_limited" and api.stats.calls == 4
        html = client.get("/visitors/visitor_123").get_data(as_text=True)
        assert api.stats.calls == 4
        assert error_kind(html) == "rate_limited"
        # Retry-After: the rest of the stand-in's 60-second window.
        assert re.search(r"request limit is reached; try again in (1 min( [01] s)?|5\d s)", html)


@pytest.mark.parametrize("staged", ["fail-429", "fail-429-bare"])
def test_the_demos_staged_429_blocks_no_other_lookup(tmp_path, staged):
    """fail-429 is a failure on purpose: it must not teach the demo key's budget."""
    with FakeApiServer() as api, dashboard(tmp_path, api.url) as (_, client):
        assert error_kind(client.get(f"/visitors/{staged}").get_data(as_text=True)) == "rate_limited"
        assert client.get("/visitors/visitor_123").status_code == 200
        assert error_kind(client.get("/visitors/fail-500").get_data(as_text=True)) == "server_error"
        assert api.stats.calls_by_visitor["visitor_123"] == 1 and api.stats.calls_by_visitor["fail-500"] == 1


def test_an_exhausted_remaining_header_stops_calls_and_cache_still_answers(tmp_path):
    with FakeApiServer(rate_limit=2) as api, dashboard(tmp_path, api.url) as (_, client):
        client.get("/visitors/visitor_123")
        client.get("/visitors/visitor_large")  # X-RateLimit-Remaining: 0 now
        assert api.stats.calls == 2
        blocked = client.get("/visitors/visitor_live").get_data(as_text=True)
        assert api.stats.calls == 2
        assert error_kind(blocked) == "rate_limited"
        cached = client.get("/visitors/visitor_123")
        assert cached.status_code == 200 and "(saved copy)" in cached.get_data(as_text=True)
        refreshed = client.get("/visitors/visitor_123?refresh=1").get_data(as_text=True)
        assert "Showing saved data." in refreshed and "request limit" in refreshed
        assert api.stats.calls == 2


def test_a_burst_of_lookups_stays_within_the_budget(tmp_path):
    with FakeApiServer() as api, dashboard(tmp_path, api.url, upstream_budget_per_minute=10) as (_, client):
        answers = [client.get(f"/visitors/burst-{n}") for n in range(25)]
        assert api.stats.calls == 10
        assert sum("request limit is reached" in a.get_data(as_text=True) for a in answers) == 15


# -- secrets ---------------------------------------------------------------------------


def test_the_key_never_appears_in_pages_redirects_or_logs(tmp_path, fake_api, caplog):
    caplog.set_level(logging.DEBUG)
    outcomes = ["visitor_123", "fail-401", "fail-500", "fail-502", "fail-html", "fail-truncated", "fail-429", "fail-slow", "fail-drop"]
    with FakeApiServer(slow_seconds=3.0) as api, dashboard(tmp_path, api.url) as (_, client):
        seen = []
        for visitor_id in outcomes:
            for headers in ({}, HTMX_MAIN):
                response = client.get(f"/visitor?visitorId={visitor_id}", headers=headers)
                seen.append(response.get_data(as_text=True))
                seen.extend(f"{k}: {v}" for k, v in response.headers.items())
    text = "\n".join(seen) + "\n".join(r.getMessage() for r in caplog.records) + caplog.text
    assert "PostMetric visitor look-up" in caplog.text  # the client did log
    assert DEMO_API_KEY not in text and DEMO_API_KEY[3:20] not in text
