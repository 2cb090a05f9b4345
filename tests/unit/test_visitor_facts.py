"""Per-visitor work done once: exact for the copy it was worked out from, and gone with it."""
from __future__ import annotations

import gc
from datetime import datetime, timedelta, timezone

from dashboard.postmetric.models import PageView, Session, Visitor
from dashboard.signals import find_signals
from dashboard.timeline import assign_page_views, build_entries, matches_per_session, page_of, referrer_context
from dashboard.visitors import view
from dashboard.visitors.state import ViewState
from tests.support.visitors import visitor_of

T0 = datetime(2024, 1, 15, 10, 0, tzinfo=timezone.utc)


def at(minutes: float) -> datetime:
    return T0 + timedelta(minutes=minutes)


def make_visitor(title_prefix: str = "Page") -> Visitor:
    sessions = [
        Session(session_id="s1", first_visit_at=at(0), last_seen_at=at(30), page_views=5, duration=1800),
        Session(session_id="s2", first_visit_at=at(100), last_seen_at=at(130), page_views=5, duration=1800),
    ]
    views = [PageView(path=f"/p{i}", title=f"{title_prefix} {i}", timestamp=at(i * 15), referrer=None) for i in range(10)]
    return visitor_of(sessions, views)


def test_facts_are_worked_out_once_per_copy(monkeypatch):
    calls = []
    real = view.work_out_facts
    monkeypatch.setattr(view, "work_out_facts", lambda visitor: calls.append(visitor) or real(visitor))
    cache = view.FactsCache()
    visitor = make_visitor()
    first = cache.facts(visitor)
    assert cache.facts(visitor) is first
    assert len(calls) == 1
    # An equal copy fetched again is another object: it gets its own facts.
    other = make_visitor()
    assert cache.facts(other) is not first
    assert len(calls) == 2


def test_facts_match_what_the_timeline_functions_give():
    visitor = make_visitor()
    facts = view.FactsCache().facts(visitor)
    assert list(facts.assignment) == assign_page_views(visitor.sessions, visitor.page_views)
    assert [s.session_id for s in facts.sessions] == ["s2", "s1"]  # newest first
    assert facts.newest_view == at(135)
    assert facts.per_session == {"s1": 3, "s2": 2, None: 5}  # 0-30, 105-120; 45-90 and 135 in none
    for state in (ViewState("visitor_123"), ViewState("visitor_123", session="s2", order="asc"), ViewState("visitor_123", q="page 1")):
        expected = build_entries(
            visitor.page_views, list(facts.assignment), session_id=state.session, query=state.q, order=state.order
        )
        assert list(facts.timeline(visitor, state)) == expected
        assert facts.timeline(visitor, state) is facts.timeline(visitor, state)  # kept, not rebuilt


def test_a_copy_that_is_gone_takes_its_facts_with_it():
    cache = view.FactsCache()
    visitor = make_visitor()
    cache.facts(visitor)
    assert len(cache) == 1
    del visitor
    gc.collect()
    assert len(cache) == 0


def test_a_new_copy_in_the_old_ones_place_is_not_answered_with_old_facts():
    cache = view.FactsCache()
    old = make_visitor("Old")
    old_facts = cache.facts(old)
    del old
    gc.collect()
    new = make_visitor("New")
    entries = cache.facts(new).timeline(new, ViewState("visitor_123"))
    assert cache.facts(new) is not old_facts
    assert all(entry.view.title.startswith("New") for entry in entries)


def test_pages_are_kept_per_filter_offset_size_and_marker():
    visitor = make_visitor()
    facts = view.FactsCache().facts(visitor)
    state = ViewState("visitor_123")
    entries = facts.timeline(visitor, state)
    for offset, size, marker in ((0, 3, None), (3, 3, None), (0, 3, 2), (0, 10, None)):
        page = facts.page(visitor, state, offset, size, marker)
        assert page == page_of(entries, offset, size, contact_index=marker)
        assert facts.page(visitor, state, offset, size, marker) is page
    assert facts.page(visitor, state, 0, 3, None) != facts.page(visitor, state, 3, 3, None)
    narrowed = ViewState("visitor_123", session="s1")
    assert facts.page(visitor, narrowed, 0, 10, None).total == 3


def test_signals_referrers_and_matches_are_what_the_functions_give_and_kept():
    visitor = make_visitor()
    facts = view.FactsCache().facts(visitor)
    assignment = assign_page_views(visitor.sessions, visitor.page_views)
    for moment in (None, at(50)):
        found, anchors = facts.signals_at(visitor, moment)
        expected, expected_anchors = find_signals(visitor, assignment, moment)
        assert found == expected
        assert [anchors.of(v) for v in visitor.page_views] == [expected_anchors.of(v) for v in visitor.page_views]
        assert facts.signals_at(visitor, moment)[0] is found
    assert facts.referrers(visitor) == referrer_context(visitor.page_views, assignment)
    assert facts.referrers(visitor) is facts.referrers(visitor)
    for state in (ViewState("visitor_123", q="page 1"), ViewState("visitor_123", session="s1", q="page 1")):
        entries = facts.timeline(visitor, state)
        assert facts.session_matches(visitor, state, entries) == matches_per_session(visitor.page_views, assignment, state.q)
    assert facts.session_matches(visitor, ViewState("visitor_123"), facts.timeline(visitor, ViewState("visitor_123"))) is None
