"""Page views to sessions, filtering and paging: pure functions, no Flask."""
from __future__ import annotations

from datetime import datetime, timedelta, timezone

import pytest

from dashboard.postmetric.models import PageView, Session
from dashboard.timeline import (
    assign_page_views,
    build_entries,
    contact_context,
    contact_index,
    contact_label,
    matches_per_session,
    page_of,
    parse_moment,
    referrer_context,
    views_per_session,
)

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


# --- collapse and paging --------------------------------------------------------------


def runs(page):
    return [(r.entry.view.path, r.count) for r in page.rows]


@pytest.fixture
def repetitive():
    sessions = [session("a", 0, 10), session("b", 20, 30)]
    views = [view(1, "/"), view(2, "/p"), view(3, "/p"), view(4, "/p"), view(5, "/q"), view(21, "/q"), view(22, "/q")]
    return build_entries(views, assign_page_views(sessions, views), order="asc")


def test_consecutive_views_of_one_path_collapse_into_one_row(repetitive):
    page = page_of(repetitive, 0, 50)
    # /q in session a and /q in session b stay apart: a run never crosses a session.
    assert runs(page) == [("/", 1), ("/p", 3), ("/q", 1), ("/q", 2)]
    assert [r.starts_group for r in page.rows] == [True, False, False, True]
    assert page.total == 7 and page.end == 7 and not page.has_more


@pytest.mark.parametrize("order", ["asc", "desc"])
def test_a_rows_earliest_view_is_the_first_in_time_whatever_the_order(order):
    views = [view(1, "/"), view(2, "/p"), view(3, "/p"), view(4, "/p")]
    entries = build_entries(views, [None] * len(views), order=order)
    rows = {r.entry.view.path: r for r in page_of(entries, 0, 50).rows}
    assert rows["/p"].count == 3 and rows["/p"].earliest.view.timestamp == at(2)  # its referrer is shown
    assert rows["/"].earliest is rows["/"].entry


def test_collapse_can_be_turned_off(repetitive):
    assert [count for _, count in runs(page_of(repetitive, 0, 50, collapse=False))] == [1] * 7


def test_paging_ends_after_the_run_that_reaches_the_limit(repetitive):
    first = page_of(repetitive, 0, 3)
    assert runs(first) == [("/", 1), ("/p", 3)]  # the run is not split between pages
    assert first.next_offset == 4 and first.views_on_page == 4
    second = page_of(repetitive, first.next_offset, 3)
    assert runs(second) == [("/q", 1), ("/q", 2)]
    assert not second.has_more


def test_a_run_longer_than_a_page_is_split_so_every_page_stays_bounded():
    views = [view(i / 10, "/same") for i in range(25)]
    entries = build_entries(views, assign_page_views([session("a", 0, 10)], views))
    pages = []
    offset = 0
    while True:
        page = page_of(entries, offset, 10)
        pages.append(page)
        if not page.has_more:
            break
        offset = page.next_offset
    assert [p.views_on_page for p in pages] == [10, 10, 5]
    assert all(len(p.rows) == 1 for p in pages)
    assert [p.rows[0].starts_group for p in pages] == [True, False, False]


def test_the_contact_marker_splits_a_run_and_is_placed_in_both_orders(repetitive):
    moment = at(3.5)  # between the second and third view of /p
    for order in ("asc", "desc"):
        entries = build_entries([e.view for e in repetitive], [e.session for e in repetitive], order=order)
        index = contact_index(entries, moment, order)
        page = page_of(entries, 0, 50, contact_index=index)
        marked = [r for r in page.rows if r.contact_before]
        assert len(marked) == 1
        before, after = (page.rows[page.rows.index(marked[0]) - 1], marked[0])
        times = sorted([before.entry.view.timestamp, after.entry.view.timestamp])
        assert times[0] <= moment < times[1] or times[0] < moment <= times[1]
    asc = page_of(repetitive, 0, 50, contact_index=contact_index(repetitive, moment, "asc"))
    assert runs(asc) == [("/", 1), ("/p", 2), ("/p", 1), ("/q", 1), ("/q", 2)]


def test_the_contact_marker_at_either_end_and_on_later_pages(repetitive):
    early, late = at(-10), at(99)
    assert contact_index(repetitive, early, "asc") == 0
    assert page_of(repetitive, 0, 50, contact_index=0).rows[0].contact_before
    end = contact_index(repetitive, late, "asc")
    assert end == 7
    assert page_of(repetitive, 0, 50, contact_index=end).contact_after
    assert not page_of(repetitive, 0, 2, contact_index=end).contact_after  # not on the first page
    second = page_of(repetitive, 4, 2, contact_index=4)
    assert second.rows[0].contact_before
    assert not page_of([], 0, 50).contact_after
    assert page_of([], 0, 50, contact_index=0).contact_after


def test_a_view_at_the_very_moment_counts_as_before_contact(repetitive):
    moment = at(2)
    asc = contact_index(repetitive, moment, "asc")
    assert repetitive[asc - 1].view.timestamp == moment
    desc_entries = list(reversed(repetitive))
    desc = contact_index(desc_entries, moment, "desc")
    assert desc_entries[desc].view.timestamp == moment


# --- the ticket moment ----------------------------------------------------------------


@pytest.mark.parametrize(
    "text,expected",
    [
        ("2024-01-15T10:30:00Z", datetime(2024, 1, 15, 10, 30, tzinfo=timezone.utc)),
        ("2024-01-15T10:30:00.000Z", datetime(2024, 1, 15, 10, 30, tzinfo=timezone.utc)),
        ("2024-01-15T10:30:00.123456789z", datetime(2024, 1, 15, 10, 30, 0, 123456, tzinfo=timezone.utc)),
        ("2024-01-15T11:30:00+01:00", datetime(2024, 1, 15, 10, 30, tzinfo=timezone.utc)),
        ("2024-01-15T11:30:00+0100", datetime(2024, 1, 15, 10, 30, tzinfo=timezone.utc)),
        ("2024-01-15T05:30:00-05:00", datetime(2024, 1, 15, 10, 30, tzinfo=timezone.utc)),
        ("2024-01-15T11:30:00 01:00", datetime(2024, 1, 15, 10, 30, tzinfo=timezone.utc)),  # '+' lost in a URL
        ("2024-01-15 10:30:00", datetime(2024, 1, 15, 10, 30, tzinfo=timezone.utc)),
        ("2024-01-15 10:30", datetime(2024, 1, 15, 10, 30, tzinfo=timezone.utc)),
        ("2024-01-15T10:30:00,5Z", datetime(2024, 1, 15, 10, 30, 0, 500000, tzinfo=timezone.utc)),
        ("20240115T103000Z", datetime(2024, 1, 15, 10, 30, tzinfo=timezone.utc)),
        ("2024-01-15T10:30Z", datetime(2024, 1, 15, 10, 30, tzinfo=timezone.utc)),  # Zendesk's created_at_with_timestamp
        ("2024-01-15", datetime(2024, 1, 15, tzinfo=timezone.utc)),
        (" 1705314600 ", datetime(2024, 1, 15, 10, 30, tzinfo=timezone.utc)),
        ("1705314600000", datetime(2024, 1, 15, 10, 30, tzinfo=timezone.utc)),
        ("yesterday", None),
        ("2024-13-45T99:00:00Z", None),
        ("", None),
        (None, None),
        ("2024-01-15T10:30:00Z" * 10, None),
    ],
)
def test_parse_moment(text, expected):
    assert parse_moment(text) == expected


@pytest.mark.parametrize(
    "minutes,label",
    [
        (-12, "12 min 0 s before contact"),
        (-12.9, "12 min 54 s before contact"),
        (3, "3 min 0 s after contact"),
        (0, "at contact"),
        (-0.5, "30 s before contact"),
        (-125, "2 h 5 min before contact"),
        (120, "2 h 0 min after contact"),
        (-60 * 24 * 4 - 3, "4 d 0 h before contact"),
    ],
)
def test_contact_labels(minutes, label):
    assert contact_label(at(minutes), T0) == label


def test_contact_context_says_where_the_visitor_was():
    views = [view(40, "/late"), view(25, "/cart", "Your Cart"), view(5, "/checkout"), view(1, "/")]
    near = contact_context(views, at(28))
    assert near.last_before.path == "/cart" and near.gap_text == "3 min 0 s" and near.active_near
    assert near.first_after.path == "/late" and near.views_after == 1
    far = contact_context(views, at(40 + 31))
    assert far.last_before.path == "/late" and far.gap_text == "31 min 0 s" and not far.active_near
    none_before = contact_context(views, at(0))
    assert none_before.last_before is None and none_before.gap is None and none_before.views_after == 4
    assert not none_before.active_near


def test_matches_per_session_count_the_filtered_views_of_every_session():
    sessions = [session("a", 0, 10), session("b", 20, 30)]
    views = [view(1, "/cart"), view(2, "/Cart/items"), view(21, "/home", title="Your CART"), view(22, "/home"), view(50, "/cart")]
    assigned = assign_page_views(sessions, views)
    assert matches_per_session(views, assigned, "  cart ") == {"a": 2, "b": 1, None: 1}
    assert matches_per_session(views, assigned, "nothing") == {}


def test_referrers_learn_the_own_site_from_the_previous_page():
    sessions = [session("a", 0, 10), session("b", 20, 30)]

    def ref(minutes, path, referrer):
        return PageView(path=path, timestamp=at(minutes), referrer=referrer)

    views = [  # newest first, as PostMetric sends them
        ref(22, "/pay", "https://evil.example/cart"),  # another host naming the path once: not the site
        ref(21, "/cart", "https://www.google.com/search?q=shop"),
        ref(4, "/pay", "https://shop.example/checkout"),
        ref(3, "/checkout", "https://Shop.Example/cart"),
        ref(2, "/cart", "https://shop.example/home"),
        ref(1, "/home", None),
    ]
    context = referrer_context(views, assign_page_views(sessions, views))
    assert context.own_hosts == frozenset({"shop.example"})
    assert [context.previous_path(v) for v in views] == ["/cart", None, "/checkout", "/cart", "/home", None]
