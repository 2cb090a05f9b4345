"""The audit trail fails closed: a look-up, refresh or export whose audit row the
database refuses shows no visitor data, says why, and tells the operator."""
from __future__ import annotations

import logging

import pytest
from prometheus_client import REGISTRY
from sqlalchemy import func, select, text

from dashboard.models import LookupEvent
from tests.support.html import one, soup, text_of
from tests.support.views import fragment

NOT_SHOWN = "This look-up could not be recorded, so it is not shown; try again in a moment."


# A trigger that aborts every INSERT into lookup_events, in each database's own dialect.
REFUSE = {
    "sqlite": (
        ["CREATE TRIGGER refuse_audit BEFORE INSERT ON lookup_events BEGIN SELECT RAISE(ABORT, 'audit writes refused'); END"],
        ["DROP TRIGGER refuse_audit"],
    ),
    "postgresql": (
        [
            "CREATE FUNCTION refuse_audit() RETURNS trigger AS $$ BEGIN RAISE EXCEPTION 'audit writes refused'; END $$ "
            "LANGUAGE plpgsql",
            "CREATE TRIGGER refuse_audit BEFORE INSERT ON lookup_events FOR EACH ROW EXECUTE FUNCTION refuse_audit()",
        ],
        ["DROP TRIGGER refuse_audit ON lookup_events", "DROP FUNCTION refuse_audit()"],
    ),
}


@pytest.fixture
def refusing_writes(app):
    """The database itself refuses every new audit row (a trigger that aborts the INSERT),
    while reading goes on as before; removed again by ``restore`` (and at the end)."""
    engine = app.extensions["db_engine"]
    create, drop = REFUSE[engine.dialect.name]
    with engine.begin() as connection:
        for statement in create:
            connection.execute(text(statement))
    restored = False

    def restore():
        nonlocal restored
        if not restored:
            with engine.begin() as connection:
                for statement in drop:
                    connection.execute(text(statement))
            restored = True

    yield restore
    restore()


def audit_rows(app) -> int:
    with app.extensions["db_engine"].connect() as connection:
        return connection.scalar(select(func.count()).select_from(LookupEvent))


def failures(action: str) -> float:
    return REGISTRY.get_sample_value("dashboard_audit_write_failures_total", {"action": action}) or 0.0


@pytest.mark.parametrize(
    "url, action",
    [
        ("/visitors/visitor_123", "lookup"),
        ("/visitors/visitor_123?refresh=1", "refresh"),
        ("/visitor/export?visitorId=visitor_123&format=csv", "export"),
        ("/visitor/export?visitorId=visitor_123&format=json", "export"),
    ],
)
def test_an_unrecorded_look_up_shows_no_visitor_data(app, logged_in, refusing_writes, caplog, url, action):
    before = failures(action)
    with caplog.at_level(logging.ERROR, logger="dashboard.errors"):
        response = logged_in.get(url)
    assert response.status_code == 503
    assert response.mimetype == "text/html"  # not the CSV or JSON download
    page = soup(response)
    assert NOT_SHOWN in text_of(one(page, "[role=alert]"))
    assert page.select("#visitor-heading") == [] and "Pricing" not in response.get_data(as_text=True)
    assert audit_rows(app) == 0
    assert failures(action) == before + 1
    assert any("audit write failed" in record.getMessage() for record in caplog.records)


def test_an_unrecorded_fragment_shows_the_message_not_the_rows(app, logged_in, refusing_writes):
    response = fragment(logged_in, "/visitors/visitor_123?q=pricing", "timeline")
    assert response.status_code == 503
    assert response.headers["HX-Retarget"] == "#messages"
    assert NOT_SHOWN in response.get_data(as_text=True)
    assert soup(response).select("tr.view") == []


def test_the_look_up_shows_again_once_rows_can_be_written(app, logged_in, refusing_writes):
    assert logged_in.get("/visitors/visitor_123").status_code == 503
    refusing_writes()
    response = logged_in.get("/visitors/visitor_123")
    assert response.status_code == 200 and one(soup(response), "#visitor-heading")
    assert "Pricing" in response.get_data(as_text=True)  # what the refused pages must not hold
    assert audit_rows(app) == 1


def test_the_operator_gets_one_line_per_interval_not_one_per_request(app, logged_in, refusing_writes, caplog):
    with caplog.at_level(logging.ERROR, logger="dashboard.errors"):
        for _ in range(5):
            assert logged_in.get("/visitors/visitor_123").status_code == 503
    lines = [record for record in caplog.records if "audit write failed" in record.getMessage()]
    assert len(lines) == 1 and lines[0].exc_info is None
