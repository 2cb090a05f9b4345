"""The team benchmark counts look-ups as the audit trail defines them: every full visitor
view answered to a signed-in agent is one look-up and one audit row (a 429 held back by
the budget included), read from the instances' JSON request log; a look-up sent back to
the log-in page, or refused as an ID, is none."""
from __future__ import annotations

import logging

import pytest
from sqlalchemy import func, select

from dashboard import create_app
from dashboard.models import LookupEvent
from dashboard.requestlog import JsonFormatter
from tests.benchmarks.team_load import answered_lookups
from tests.conftest import AuthActions, add_agent, make_settings


@pytest.fixture
def tight_budget_app(tmp_path, fake_api, backend):
    """One upstream call a minute: the second new visitor is held back with a 429."""
    app = create_app(make_settings(tmp_path, fake_api.url, upstream_budget_per_minute=1))
    yield app
    app.extensions["db_engine"].dispose()


def test_the_benchmark_counts_each_audited_look_up_once(tight_budget_app, caplog):
    client = tight_budget_app.test_client()
    add_agent(tight_budget_app)
    caplog.set_level(logging.INFO, logger="dashboard.requests")
    assert client.get("/visitors/visitor_123").status_code == 302  # not signed in: sent to log in
    assert AuthActions(tight_budget_app, client).login().status_code == 302
    statuses = [client.get(f"/visitors/{visitor}").status_code for visitor in ("visitor_123", "visitor_123", "visitor_456")]
    assert statuses == [200, 200, 429]  # a fetch, a cached repeat, and one the budget held back
    assert client.get("/visitors/%20visitor_123").status_code in (301, 302, 303, 308)  # trimmed: its canonical URL

    lines = [JsonFormatter().format(record) for record in caplog.records]
    counts = answered_lookups(["[gunicorn's own line]", *lines])
    with tight_budget_app.app_context():
        engine = tight_budget_app.extensions["db_engine"]
        with engine.connect() as connection:
            rows = connection.execute(select(func.count()).select_from(LookupEvent)).scalar_one()
    assert (counts["answered"], counts["held"], counts["logged_out"]) == (3, 1, 1)
    assert rows == counts["answered"]
