"""The visitor view's one context builder and the audit policy it follows, through the
real app against the bundled PostMetric stand-in."""
from __future__ import annotations

import json
from datetime import datetime, timedelta, timezone

import pytest
from flask import request
from flask_login import login_user
from sqlalchemy import select

from dashboard import audit
from dashboard.extensions import db
from dashboard.lookup import NoSiteConfigured, UnknownSite, VisitorAnswer
from dashboard.models import Agent, LookupEvent
from dashboard.visitors.state import ViewState
from dashboard.visitors.view import export_body, visitor_view


def events(app) -> list[LookupEvent]:
    with app.app_context():
        return list(db.session.scalars(select(LookupEvent).order_by(LookupEvent.id)))


@pytest.fixture
def as_agent(app, auth):
    """Run code inside a request of the signed-in agent; returns the agent's id."""

    def within(url: str = "/"):
        context = app.test_request_context(url)
        context.push()
        agent = db.session.scalars(select(Agent)).one()
        login_user(agent)
        contexts.append(context)
        return agent.id

    contexts: list = []
    yield within
    for context in reversed(contexts):
        context.pop()


@pytest.mark.parametrize(
    "query",
    ["", "q=product", "order=asc", "order=asc&q=checkout", "at=2024-01-18T10:00:00Z"],
)
def test_the_export_holds_the_timeline_the_page_shows(app, as_agent, query):
    """Both are built by view.timeline_entries: same views, same order, same filter."""
    as_agent(f"/visitors/visitor_123?{query}")
    state = ViewState.from_args("visitor_123", request.args)
    view = visitor_view(state, refresh=False, new_lookup=True)
    page = view.context["page"]
    on_screen = [entry.view.timestamp for row in page.rows for entry in row.entries]
    assert page.total == len(on_screen) > 0  # visitor_123 fits on one page
    document = json.loads(export_body(view.context["visitor"], view.state, "json", datetime.now(timezone.utc)))
    exported = [datetime.fromisoformat(row["timestamp_utc"].replace("Z", "+00:00")) for row in document["pageViews"]]
    assert exported == on_screen


def test_a_session_filter_narrows_the_export_like_the_page(app, as_agent):
    as_agent("/visitors/visitor_123")
    visitor = visitor_view(ViewState("visitor_123"), refresh=False, new_lookup=True).context["visitor"]
    session = visitor.sessions[0].session_id
    narrowed = visitor_view(ViewState("visitor_123", session=session), refresh=False, new_lookup=False)
    document = json.loads(export_body(visitor, narrowed.state, "json", datetime.now(timezone.utc)))
    assert {row["session_id"] for row in document["pageViews"]} == {session}
    assert document["exported"] == narrowed.context["page"].total < len(visitor.page_views)


def test_no_site_is_recorded_and_an_unknown_site_is_not(app, as_agent):
    agent_id = as_agent()
    audit.record_answer(db.engine, VisitorAnswer("shop", None, NoSiteConfigured()), agent_id=agent_id, visitor_id="v1", action="lookup", ticket="T-1")
    audit.record_answer(db.engine, VisitorAnswer("blog", None, UnknownSite("blog")), agent_id=agent_id, visitor_id="v2", action="lookup", ticket=None)
    assert [(e.visitor_id, e.site, e.outcome, e.ticket) for e in events(app)] == [("v1", "shop", "no_site", "T-1")]


def test_a_failing_write_is_raised_so_the_look_up_is_not_shown(app, as_agent, monkeypatch):
    agent_id = as_agent()
    monkeypatch.setattr(audit, "record_event", lambda *args, **kwargs: 1 / 0)
    with pytest.raises(audit.AuditNotRecorded) as raised:
        audit.record_answer(db.engine, VisitorAnswer(None, None, NoSiteConfigured()), agent_id=agent_id, visitor_id="v", action="export", ticket=None)
    assert raised.value.action == "export" and "ZeroDivisionError" in raised.value.cause


def test_a_fragment_is_a_look_up_of_its_own_unless_the_trail_already_shows_it(app, as_agent):
    agent_id = as_agent()
    now = datetime.now(timezone.utc)
    answer = VisitorAnswer("default")  # from the cache: PostMetric was not asked

    def must(visitor_id: str, *, new_lookup: bool = False, at: datetime = now) -> bool:
        return audit.must_record(db.session, answer, agent_id=agent_id, visitor_id=visitor_id, new_lookup=new_lookup, now=at)

    assert must("visitor_123")  # nothing on the trail yet
    audit.record_event(db.engine, agent_id=agent_id, site="default", visitor_id="visitor_123", action="lookup", outcome="ok")
    assert not must("visitor_123")
    assert must("visitor_123", new_lookup=True)
    assert must("visitor_other")
    assert must("visitor_123", at=now + audit.FRAGMENT_WINDOW + timedelta(minutes=1))
    other_site = VisitorAnswer("shop")
    assert audit.must_record(db.session, other_site, agent_id=agent_id, visitor_id="visitor_123", new_lookup=False, now=now)
