"""Page views to sessions, filtering and paging: pure functions, no Flask."""
from __future__ import annotations

from datetime import datetime, timedelta, timezone

import pytest

from dashboard.postmetric.models import PageView, Session
from dashboard.timeline import assign_page_views, build_entries, page_of, views_per_session

T0 = datetime(2024, 1, 15, 10, 0, tzinfo=timezone.utc)


def at(minutes: float) -> datetime:
    return T0 + timedelta(minutes=minutes)


def session(sid: str, start: float, end: float) -> Session:
    return Session(session_id=sid, first_visit_at=at(start), last_seen_at=at(end), page_views=0, duration=int((end - start) * 60))


def view(minutes: float, path: str = "/", title: str | None = None) -> PageView:
    return PageView(path=path, title=title, timestamp=at(minutes), referrer=None)


def ids(assigned):
    return [s.session_id if s else None for s in assigned]


def test_boundaries_are_inclusive():
    sessions = [session("a", 0, 10)]
    assert ids(assign_page_views(sessions, [view(0), view(10), view(5)])) == ["a", "a", "a"]


def test_views_outside_every_window_are_kept_as_none():
    sessions = [session("a", 0, 10), session("b", 20, 30)]
    views = [view(-1), view(15), view(31), view(25)]
    assert ids(assign_page_views(sessions, views)) == [None, None, None, "b"]


def test_overlapping_windows_go_to_the_latest_started_session():
    sessions = [session("outer", 0, 60), session("inner", 10, 20)]
    views = [view(5), view(15), view(25), view(10)]
    assert ids(assign_page_views(sessions, views)) == ["outer", "inner", "outer", "inner"]


def test_a_long_earlier_session_is_still_found_behind_short_later_ones():
    sessions = [session("long", 0, 100), session("s1", 10, 11), session("s2", 20, 21)]
    assert ids(assign_page_views(sessions, [view(50)])) == ["long"]


def test_session_order_in_the_input_does_not_matter():
    sessions = [session("b", 20, 30), session("a", 0, 10)]
    assert ids(assign_page_views(sessions, [view(5), view(25)])) == ["a", "b"]


def test_empty_inputs():
    assert assign_page_views([], []) == []
    assert assign_page_views([], [view(1)]) == [None]
    assert assign_page_views([session("a", 0, 1)], []) == []


def test_a_window_that_ends_before_it_starts_holds_nothing():
    assert ids(assign_page_views([session("bad", 10, 5)], [view(7)])) == [None]


def test_views_per_session_counts_none_too():
    sessions = [session("a", 0, 10)]
    assigned = assign_page_views(sessions, [view(1), view(2), view(50)])
    assert views_per_session(assigned) == {"a": 2, None: 1}


@pytest.fixture
def timeline():
    sessions = [session("a", 0, 10), session("b", 20, 30)]
    views = [view(25, "/cart", "Your Cart"), view(21, "/"), view(5, "/checkout", "Checkout"), view(1, "/"), view(40, "/late")]
    return views, assign_page_views(sessions, views)


def test_build_entries_filters_by_session_and_text(timeline):
    views, assigned = timeline
    assert [e.view.path for e in build_entries(views, assigned, session_id="b")] == ["/cart", "/"]
    assert [e.view.path for e in build_entries(views, assigned, query="  CART ")] == ["/cart"]
    assert [e.view.path for e in build_entries(views, assigned, query="checkout")] == ["/checkout"]
    assert build_entries(views, assigned, session_id="nope") == []


def test_build_entries_orders_newest_or_oldest_first(timeline):
    views, assigned = timeline
    newest = [e.view.timestamp for e in build_entries(views, assigned)]
    assert newest == sorted(newest, reverse=True)
    oldest = [e.view.timestamp for e in build_entries(views, assigned, order="asc")]
    assert oldest == sorted(oldest)
    assert build_entries(views, assigned, order="sideways") == build_entries(views, assigned, order="desc")


def test_paging_marks_where_each_session_run_starts(timeline):
    views, assigned = timeline
    entries = build_entries(views, assigned, order="asc")  # /, /checkout (a) ; / , /cart (b) ; /late (none)
    first = page_of(entries, 0, 3)
    assert [r.starts_group for r in first.rows] == [True, False, True]
    assert first.has_more and first.next_offset == 3 and first.total == 5
    second = page_of(entries, 3, 3)
    # The page continues session b, so its first row is no new group.
    assert [r.starts_group for r in second.rows] == [False, True]
    assert not second.has_more
    assert page_of(entries, 99, 3).rows == []
    assert page_of(entries, -5, 2).offset == 0
