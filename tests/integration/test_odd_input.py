"""Odd input never ends in a 500: extreme dates, huge numbers, slashes in IDs, long values."""
from __future__ import annotations

import logging
from urllib.parse import parse_qs, urlsplit

import pytest

from dashboard.extensions import db
from dashboard.models import Agent
from dashboard.security import redact_request_logs
from tests.conftest import AGENT_EMAIL, csrf_token_from
from tests.support.accounts import ADMIN_EMAIL, ADMIN_PASSWORD, logged_in_client, make_admin
from tests.support.html import one, soup, text_of, texts


def set_zone(app, zone: str) -> None:
    with app.app_context():
        agent = db.session.query(Agent).filter_by(email=AGENT_EMAIL).one()
        agent.timezone = zone
        db.session.commit()


EXTREME_MOMENTS = ["0001-01-01T00:00:00+14:00", "9999-12-31T23:59:59-14:00", "0001-01-01", "9999-12-31T23:59:59Z", "99999999999999"]


@pytest.mark.parametrize("zone", ["America/New_York", "Asia/Tokyo", "UTC"])
@pytest.mark.parametrize("at", EXTREME_MOMENTS)
def test_extreme_ticket_moments_get_the_notice_not_an_error(app, logged_in, zone, at):
    set_zone(app, zone)
    page = logged_in.get("/visitors/visitor_123", query_string={"at": at})
    assert page.status_code == 200 and one(soup(page), "#contact-notice")
    export = logged_in.get("/visitor/export", query_string={"visitorId": "visitor_123", "format": "csv", "at": at})
    assert export.status_code == 200


@pytest.mark.parametrize(
    "query,status",
    [
        ({"to": "9999-12-31"}, 200),
        ({"from": "0001-01-01"}, 200),
        ({"page": "9" * 23}, 200),
        ({"agent": "9" * 23}, 200),
        ({"page": "-4"}, 200),
    ],
)
def test_extreme_audit_filters_are_explained_not_crashed(app, query, status):
    make_admin(app)
    admin = logged_in_client(app, ADMIN_EMAIL, ADMIN_PASSWORD)
    for url in ("/admin/audit", "/admin/audit.csv"):
        response = admin.get(url, query_string=query)
        assert response.status_code in (status, 400), (url, response.status_code)
        assert "Something went wrong" not in response.text


@pytest.mark.parametrize("path,visitor_id", [("/visitors/a%2Fb", "a/b"), ("/visitors/a%20b", "a b"), ("/visitors/%2E", ".")])
def test_ids_that_a_path_cannot_carry_are_sent_to_the_query_form(logged_in, path, visitor_id):
    response = logged_in.get(path, query_string={"ticket": "T-1"})
    assert response.status_code == 302
    location = urlsplit(response.headers["Location"])
    assert location.path == "/visitor" and parse_qs(location.query) == {"visitorId": [visitor_id], "ticket": ["T-1"]}
    assert logged_in.get(response.headers["Location"]).status_code == 200


def test_long_unknown_session_and_site_values_are_cut_on_screen(logged_in):
    long_session = logged_in.get("/visitors/visitor_123", query_string={"session": "s" * 10_000})
    html = long_session.text
    # Cut on screen, and isolated so that its characters cannot reorder the sentence.
    page = soup(html)
    assert "This visitor has no session “" + "s" * 79 + "…”." in text_of(page)
    assert "s" * 79 + "…" in texts(page, "p bdi")
    assert "s" * 257 not in html  # the value carried in the page's links is capped too
    assert len(long_session.data) < 200_000
    long_site = logged_in.get("/visitors/visitor_123", query_string={"site": "x" * 10_000})
    assert long_site.status_code == 404 and "x" * 200 not in long_site.text


# -- sessions end, pages are not kept, links do not leak -------------------------------------


def test_logging_out_voids_copies_of_the_cookies(app, auth):
    auth.login(remember="y")
    copied = {cookie.key: cookie.value for cookie in auth.client._cookies.values()}
    assert {"session", "remember_token"} <= set(copied)
    auth.logout()
    thief = app.test_client()
    for name, value in copied.items():
        thief.set_cookie(name, value)
    response = thief.get("/visitors/visitor_123")
    assert response.status_code == 302 and urlsplit(response.headers["Location"]).path == "/login"


def test_signed_in_pages_are_not_kept_in_caches(logged_in, client):
    assert logged_in.get("/visitors/visitor_123").headers["Cache-Control"] == "no-store"
    assert logged_in.get("/visitors/visitor_123", headers={"HX-Request": "true", "HX-Target": "timeline"}).headers["Cache-Control"] == "no-store"
    for url in ("/visitor/export?visitorId=visitor_123&format=csv", "/lookups/progress"):
        assert logged_in.get(url).headers["Cache-Control"] == "no-store", url
    with logged_in.get("/static/app.css") as static:
        assert static.headers.get("Cache-Control") != "no-store"


@pytest.mark.parametrize("logger_name", ["gunicorn.access", "werkzeug"])
def test_set_password_links_are_redacted_from_request_logs(app, caplog, logger_name):
    redact_request_logs()
    caplog.set_level(logging.INFO, logger=logger_name)
    logger = logging.getLogger(logger_name)
    if logger_name == "gunicorn.access":  # gunicorn logs a format with a dict of atoms
        logger.info('%(h)s "%(r)s" %(s)s', {"h": "127.0.0.1", "r": "GET /set-password/eyJhbGciOi.secret-token HTTP/1.1", "s": "200"})
    else:
        logger.info('%s - - "%s" %s -', "127.0.0.1", "POST /set-password/eyJhbGciOi.secret-token?x=1 HTTP/1.1", "302")
    assert "secret-token" not in caplog.text and "/set-password/[redacted]" in caplog.text


def test_a_logout_form_tells_app_js_to_forget_the_history_snapshots(logged_in):
    html = logged_in.get("/").text
    assert one(soup(html), "form[data-logout]")
    assert csrf_token_from(html)
