"""Requests that carry the session cookie but no customer data do not load the agent."""
from __future__ import annotations

from contextlib import contextmanager

import pytest
from sqlalchemy import event


@contextmanager
def statements(app):
    sent: list[str] = []

    def note(_conn, _cursor, statement, *_args) -> None:
        sent.append(statement)

    engine = app.extensions["db_engine"]
    event.listen(engine, "before_cursor_execute", note)
    try:
        yield sent
    finally:
        event.remove(engine, "before_cursor_execute", note)


@pytest.mark.parametrize("url", ["/static/app.js", "/static/app.css", "/healthz"])
def test_static_files_and_the_probe_ask_no_database_of_a_logged_in_browser(app, logged_in, url):
    with statements(app) as sent, logged_in.get(url) as response:  # closes the static file
        assert response.status_code == 200
        assert response.headers.get("Cache-Control") != "no-store"
    assert sent == []


def test_a_page_still_checks_the_agent_and_is_not_cached(app, logged_in):
    with statements(app) as sent:
        response = logged_in.get("/")
    assert response.headers["Cache-Control"] == "no-store"
    assert any("FROM agents" in statement for statement in sent)


def test_the_readiness_probe_does_not_load_the_agent(app, logged_in):
    """/readyz pings the database for the instance, never for the agent whose cookie came along."""
    with statements(app) as sent:
        response = logged_in.get("/readyz")
    assert response.status_code == 200
    assert response.headers["Cache-Control"] == "no-store"  # its own, not the signed-in pages'
    assert sent and not any("agents" in statement for statement in sent)
