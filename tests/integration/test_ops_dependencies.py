"""Dependencies down, dashboard honest: with PostgreSQL or Redis stopped (real servers,
stopped and started again by the test) the probes say which part failed, pages are the
dashboard's own 503 (never a bare 500), login falls back to in-process counts, and
everything recovers by itself once the server is back."""
from __future__ import annotations

import logging

import pytest
from sqlalchemy import func, select

from dashboard import create_app
from dashboard.extensions import limiter
from dashboard.models import LookupEvent
from tests.conftest import AuthActions, add_agent, make_settings
from tests.support.html import one, soup, text_of
from tests.support.services import stoppable_postgres_server, stoppable_redis_server
from tests.support.views import fragment
from tests.support.waiting import wait_until

DATABASE_DOWN = "The dashboard's database is not answering"


@pytest.fixture
def postgres():
    with stoppable_postgres_server() as (url, executor):
        yield url, executor


@pytest.fixture
def redis():
    with stoppable_redis_server() as (url, executor):
        yield url, executor


def readiness(client):
    response = client.get("/readyz")
    return response.status_code, response.get_json()


def test_readyz_and_pages_while_postgresql_is_down_and_after_it_returns(tmp_path, fake_api, postgres, caplog):
    url, server = postgres
    app = create_app(make_settings(tmp_path, fake_api.url, database_url=url, readiness_timeout=2.0))
    add_agent(app)
    client = app.test_client()
    AuthActions(app, client).login()
    assert client.get("/visitors/visitor_123").status_code == 200
    assert readiness(client) == (200, {"status": "ready", "checks": {"database": "ok"}})

    server.stop()
    try:
        assert readiness(client) == (503, {"status": "unavailable", "checks": {"database": "not answering"}})
        assert client.get("/healthz").status_code == 200  # alive, only not ready
        with caplog.at_level(logging.ERROR):
            pages = [client.get(path) for path in ("/visitors/visitor_123", "/", "/visitors/visitor_live")]
            block = fragment(client, "/visitors/visitor_123?q=pricing", "timeline")
        for page in pages:
            assert page.status_code == 503 and page.headers["Retry-After"]
            assert DATABASE_DOWN in text_of(one(soup(page), "[role=alert] h1"))
            assert page.headers["X-Request-ID"] in page.get_data(as_text=True)
        assert block.status_code == 503 and block.headers["HX-Retarget"] == "#messages"
        assert DATABASE_DOWN in text_of(soup(block))
        # One line for the kind in this interval, no tracebacks; not one per request.
        lines = [r for r in caplog.records if r.levelno >= logging.ERROR]
        assert len(lines) == 1 and "database not answering" in lines[0].getMessage() and lines[0].exc_info is None
        # The login page (no database needed to draw it) still answers.
        fresh = app.test_client()
        assert fresh.get("/login").status_code == 200
    finally:
        server.start()

    wait_until(lambda: readiness(client)[0] == 200, timeout=15, message="/readyz did not recover")
    response = client.get("/visitors/visitor_123")
    assert response.status_code == 200  # the same session: nothing had to be redone
    engine = app.extensions["db_engine"]
    with engine.connect() as connection:
        # Nothing already recorded was lost: the first look-up and this one.
        assert connection.scalar(select(func.count()).select_from(LookupEvent)) == 2
    engine.dispose()


def test_readyz_login_and_look_ups_while_redis_is_down_and_after_it_returns(tmp_path, fake_api, redis, caplog):
    url, server = redis
    app = create_app(make_settings(tmp_path, fake_api.url, redis_url=url, login_limit_per_account="3 per 15 minutes"))
    add_agent(app)
    client = app.test_client()
    auth = AuthActions(app, client)
    assert readiness(client) == (200, {"status": "ready", "checks": {"database": "ok", "redis": "ok"}})
    assert not limiter.limiter.using_fallback

    server.stop()
    try:
        assert readiness(client) == (503, {"status": "degraded", "checks": {"database": "ok", "redis": "not answering"}})
        with caplog.at_level(logging.WARNING, logger="dashboard.limits"):
            assert auth.login().status_code == 302  # counted in memory, with a warning
        assert any("not answering" in r.getMessage() for r in caplog.records)
        assert client.get("/visitors/visitor_123").status_code == 200
        auth.logout()
        # The limits still hold meanwhile (in this process).
        statuses = [auth.login(password="wrong password 123").status_code for _ in range(4)]
        assert statuses[-1] == 429
    finally:
        server.start()

    wait_until(lambda: readiness(client)[0] == 200, timeout=15, message="/readyz did not recover")
    # Back in the shared store once it answers again (checked every few seconds).
    wait_until(lambda: auth.login().status_code == 302 and not limiter.limiter.using_fallback, timeout=15, message="limits did not return to Redis")
