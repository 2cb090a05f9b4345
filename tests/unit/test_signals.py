"""What stands out in a visitor's page views: pure functions, on demo and hostile data."""
from __future__ import annotations

import json
from datetime import datetime, timedelta, timezone

import pytest

from dashboard import signals
from dashboard.demo.data import (
    EXAMPLE_VISITOR_ID,
    HOSTILE_VISITOR_ID,
    LARGE_VISITOR_ID,
    SIGNALS_CONTACT_AT,
    SIGNALS_VISITOR_ID,
    build_visitor_payload,
)
from dashboard.formatting import HIDDEN_CHARACTERS
from dashboard.postmetric.models import PageView, Session, Visitor, parse_visitor_payload
from dashboard.signals import Signal, find_signals, looks_like_error
from dashboard.timeline import assign_page_views, parse_moment
from tests.support.signals import SIGNALS_VISITOR_KINDS

T0 = datetime(2024, 5, 1, 9, 0, tzinfo=timezone.utc)


def at(minutes: float) -> datetime:
    return T0 + timedelta(minutes=minutes)


def session(sid: str, start: float, end: float, device: str | None = "desktop") -> Session:
    return Session(session_id=sid, first_visit_at=at(start), last_seen_at=at(end), page_views=0, device=device)


def view(minutes: float, path: str = "/", title: str | None = None) -> PageView:
    return PageView(path=path, title=title, timestamp=at(minutes))


def visitor_of(sessions: list[Session], views: list[PageView], *, newest_first: bool = True) -> Visitor:
    views = sorted(views, key=lambda v: v.timestamp, reverse=newest_first)
    return Visitor(visitor_id="v", session_count=len(sessions), page_view_count=len(views), sessions=sessions, page_views=views)


def found(visitor: Visitor, moment: datetime | None = None) -> list[Signal]:
    return find_signals(visitor, assign_page_views(visitor.sessions, visitor.page_views), moment)[0]


def kinds(result: list[Signal]) -> list[str]:
    return [signal.kind for signal in result]


def of_kind(result: list[Signal], kind: str) -> list[Signal]:
    return [signal for signal in result if signal.kind == kind]


def demo(visitor_id: str) -> Visitor:
    payload = build_visitor_payload(visitor_id, datetime.now(timezone.utc))
    return parse_visitor_payload(json.dumps({"status": "success", "data": payload}), visitor_id)


# --- the demo data ---------------------------------------------------------------------


def test_the_signals_visitor_shows_every_kind():
    visitor = demo(SIGNALS_VISITOR_ID)
    result = found(visitor, parse_moment(SIGNALS_CONTACT_AT))
    assert kinds(result) == SIGNALS_VISITOR_KINDS
    by_kind = {signal.kind: signal for signal in reversed(result)}  # the first of each kind
    assert by_kind["last_before_contact"].sentence == "Last page before contact: “Contact us” (/contact), 1 min before contact."
    assert [t.anchor for t in by_kind["last_before_contact"].targets] == ["view-20240211t190900"]
    assert [s.sentence for s in of_kind(result, "error_page")] == [
        "Error page: “Payment failed” (/checkout/error).",
        "Error page: “Page not found” (/products/old-widget).",
    ]
    repeated = by_kind["repeated"]
    assert repeated.sentence == "Repeated attempts: “Checkout: payment” (/checkout/payment) 3 times within 5 min."
    assert [t.anchor for t in repeated.targets] == ["view-20240211t190200", "view-20240211t190600", "view-20240211t190700"]
    assert {t.session_id for t in repeated.targets} == {"sess_signals_mobile"}
    loop = by_kind["loop"]
    assert loop.sentence.startswith("Back and forth: 5 views alternating between “Your cart” (/cart) and “Shipping")
    assert [t.anchor[-4:] for t in loop.targets] == ["2100", "2200", "2300", "2400", "2500"]
    assert by_kind["long_stay"].sentence == "Long stay: 16 min on “Pricing” (/pricing) before the next page."
    assert by_kind["several_devices"].sentence == "Sessions on 2 devices: desktop, mobile."


def test_without_a_ticket_moment_there_is_no_last_page_before_contact():
    assert "last_before_contact" not in kinds(found(demo(SIGNALS_VISITOR_ID)))


def test_the_documentation_example_has_its_error_page_and_three_devices_and_nothing_else():
    result = found(demo(EXAMPLE_VISITOR_ID))
    assert kinds(result) == ["error_page", "several_devices"]
    assert result[0].sentence == "Error page: “Something went wrong” (/checkout/error)."
    assert result[1].sentence == "Sessions on 3 devices: desktop, mobile, tablet."
    # Each device links the first page of its latest session, newest first.
    assert [t.session_id for t in result[1].targets] == ["session_460", "session_458", "session_457"]


def test_a_big_visitor_keeps_the_panel_short():
    result = found(demo(LARGE_VISITOR_ID))
    for kind in signals.KINDS:
        assert len(of_kind(result, kind)) <= signals.PER_KIND + 1
    assert all(len(signal.targets) <= signals.TARGETS_PER_SIGNAL for signal in result)


def test_hostile_text_is_shortened_and_made_visible():
    visitor = demo(HOSTILE_VISITOR_ID)
    extra = [
        view(0, "/x", "\u202eError\u202c " + "A" * 10_000),
        view(1, "/x", "\u202eError\u202c " + "A" * 10_000),
        view(2, "/x", "\u202eError\u202c " + "A" * 10_000),
    ]
    for subject in (visitor, visitor_of([session("s", 0, 30)], extra)):
        result = found(subject, at(60))
        assert result
        for signal in result:
            assert not HIDDEN_CHARACTERS.search(signal.sentence)
            assert len(signal.sentence) < 400
    hostile = found(visitor_of([session("s", 0, 30)], extra))
    assert "[U+202E]Error[U+202C] AAA" in hostile[0].sentence and "…" in hostile[0].sentence


def test_hostile_visitor_markup_stays_text():
    # The sentence is plain text (escaped where shown): markup in a title is kept as written.
    markup = '"><img src=x onerror=alert(1)> went wrong'
    result = found(visitor_of([session("s", 0, 10)], [view(1, "/p", markup)]))
    assert result[0].kind == "error_page" and markup in result[0].sentence


# --- error pages ------------------------------------------------------------------------


@pytest.mark.parametrize(
    "path, title",
    [
        ("/checkout/error", None),
        ("/x", "Something went wrong"),
        ("/x", "Payment FAILED"),
        ("/404", None),
        ("/x", "500 Internal Server Error"),
        ("/page_not_found", None),
        ("/x", "Not   found"),
        ("/went-wrong", None),
        ("/x", "Errors in your form"),
        ("/x", "Login failure"),
    ],
)
def test_error_words(path, title):
    assert looks_like_error(path, title)


@pytest.mark.parametrize(
    "path, title",
    [
        ("/terror", "Terrorist-free zone"),
        ("/errorless", None),
        ("/products/1404", "Item 5000"),
        ("/x", "Failedness"),
        ("/x", "We found it"),
        ("/", None),
        ("", ""),
        (None, None),
    ],
)
def test_not_error_words(path, title):
    assert not looks_like_error(path, title)


def test_an_error_page_seen_twice_is_one_line_linking_both_views():
    result = found(visitor_of([session("s", 0, 60)], [view(1, "/e", "Error"), view(20, "/ok"), view(40, "/e", "Error")]))
    (signal,) = of_kind(result, "error_page")
    assert signal.sentence == "Error page: “Error” (/e) (2 times)."
    assert [t.timestamp for t in signal.targets] == [at(40), at(1)]


# --- repeated attempts ----------------------------------------------------------------


def test_three_views_of_one_path_within_five_minutes_are_repeated_attempts():
    views = [view(0, "/pay"), view(1, "/other"), view(2, "/pay"), view(5, "/pay")]
    (signal,) = of_kind(found(visitor_of([session("s", 0, 10)], views)), "repeated")
    assert signal.sentence == "Repeated attempts: /pay 3 times within 5 min."
    assert [t.timestamp for t in signal.targets] == [at(0), at(2), at(5)]


@pytest.mark.parametrize(
    "minutes",
    [
        [0, 2, 5.1],  # the third is outside the window
        [0, 4],  # only two
    ],
)
def test_fewer_or_slower_views_are_not_repeated_attempts(minutes):
    views = [view(m, "/pay") for m in minutes]
    assert not of_kind(found(visitor_of([session("s", 0, 10)], views)), "repeated")


def test_repeated_attempts_count_across_sessions():
    views = [view(0, "/pay"), view(2, "/pay"), view(3, "/pay")]
    sessions = [session("a", 0, 1), session("b", 2, 3, device="mobile")]
    assert of_kind(found(visitor_of(sessions, views)), "repeated")


# --- loops ----------------------------------------------------------------------------


def test_an_a_b_a_b_alternation_is_a_loop():
    views = [view(0, "/a"), view(20, "/b"), view(40, "/a"), view(60, "/b")]
    result = found(visitor_of([session("s", 0, 60)], views))
    (signal,) = of_kind(result, "loop")
    assert signal.sentence == "Back and forth: 4 views alternating between /a and /b."
    assert not of_kind(result, "repeated")  # the loop tells the story once


def test_a_reload_within_a_loop_does_not_break_it():
    views = [view(0, "/a"), view(1, "/a"), view(2, "/b"), view(3, "/a"), view(4, "/b")]
    (signal,) = of_kind(found(visitor_of([session("s", 0, 10)], views)), "loop")
    assert [t.timestamp for t in signal.targets] == [at(0), at(2), at(3), at(4)]


@pytest.mark.parametrize(
    "paths",
    [
        ["/a", "/b", "/a"],  # three views only
        ["/a", "/b", "/a", "/c"],
        ["/a", "/b", "/c", "/a", "/b", "/c"],
    ],
)
def test_other_orders_are_not_loops(paths):
    views = [view(10 * i, path) for i, path in enumerate(paths)]
    assert not of_kind(found(visitor_of([session("s", 0, 100)], views)), "loop")


def test_a_loop_does_not_cross_sessions():
    views = [view(0, "/a"), view(1, "/b"), view(30, "/a"), view(31, "/b")]
    sessions = [session("one", 0, 1), session("two", 30, 31)]
    assert not of_kind(found(visitor_of(sessions, views)), "loop")


def test_a_loop_ending_a_session_stays_in_it_when_the_next_session_starts_on_the_same_page():
    views = [view(0, "/a"), view(1, "/b"), view(2, "/a"), view(3, "/b"), view(30, "/b"), view(31, "/a"), view(32, "/b")]
    sessions = [session("one", 0, 3), session("two", 30, 32)]
    (signal,) = of_kind(found(visitor_of(sessions, views)), "loop")
    assert [t.session_id for t in signal.targets] == ["one"] * 4


def test_one_page_over_and_over_is_no_loop():
    views = [view(i, "/same") for i in range(0, 60, 15)]
    assert not of_kind(found(visitor_of([session("s", 0, 60)], views)), "loop")


# --- long stays ---------------------------------------------------------------------------


def test_ten_minutes_before_the_next_view_of_the_session_is_a_long_stay():
    views = [view(0, "/a"), view(10, "/b"), view(19.9, "/c")]
    (signal,) = of_kind(found(visitor_of([session("s", 0, 60)], views)), "long_stay")
    assert signal.sentence == "Long stay: 10 min on /a before the next page."
    assert signal.targets[0].timestamp == at(0)


def test_the_last_view_of_a_session_and_views_outside_sessions_are_never_long_stays():
    views = [view(0, "/a"), view(1, "/b"), view(100, "/outside"), view(200, "/later"), view(300, "/c")]
    sessions = [session("one", 0, 1), session("two", 300, 300)]
    assert not of_kind(found(visitor_of(sessions, views)), "long_stay")


def test_overlapping_sessions_measure_a_stay_to_the_next_view_of_the_same_session():
    # "inner" sits inside "outer": their views interleave in time.
    sessions = [session("outer", 0, 60), session("inner", 5, 8, device="mobile")]
    views = [view(0, "/a"), view(5, "/in"), view(8, "/in2"), view(12, "/b")]
    (signal,) = of_kind(found(visitor_of(sessions, views)), "long_stay")
    assert signal.sentence == "Long stay: 12 min on /a before the next page."


def test_many_long_stays_show_the_newest_three_and_a_line_for_the_rest():
    views = [view(15 * i, f"/p{i}") for i in range(6)]
    result = of_kind(found(visitor_of([session("s", 0, 100)], views)), "long_stay")
    assert [s.sentence for s in result[:3]] == [f"Long stay: 15 min on /p{i} before the next page." for i in (4, 3, 2)]
    assert result[3].sentence == "2 more like this."
    assert [t.timestamp for t in result[3].targets] == [at(15), at(0)]


# --- the ticket moment and devices -------------------------------------------------------


def test_last_page_before_contact():
    views = [view(0, "/a"), view(5, "/b"), view(9, "/c")]
    visitor = visitor_of([session("s", 0, 9)], views)
    assert found(visitor, at(7))[0].sentence == "Last page before contact: /b, 2 min before contact."
    assert found(visitor, at(5))[0].sentence == "Last page before contact: /b, at the contact moment."
    assert "last_before_contact" not in kinds(found(visitor, at(-1)))


@pytest.mark.parametrize(
    "devices, count",
    [
        (["desktop", "desktop"], 0),
        (["desktop", "Desktop "], 0),
        (["desktop", None], 0),
        (["desktop", "mobile", None, "tablet"], 1),
    ],
)
def test_several_devices(devices, count):
    sessions = [session(f"s{i}", 10 * i, 10 * i + 1, device=d) for i, d in enumerate(devices)]
    views = [view(10 * i) for i in range(len(devices))]
    assert len(of_kind(found(visitor_of(sessions, views)), "several_devices")) == count


def test_devices_are_named_as_first_written_in_order_of_first_use():
    sessions = [session("a", 0, 1, device="Desktop "), session("b", 10, 11, device="mobile"), session("c", 20, 21, device="desktop")]
    views = [view(0), view(10), view(20)]
    (signal,) = of_kind(found(visitor_of(sessions, views)), "several_devices")
    assert signal.sentence == "Sessions on 2 devices: Desktop, mobile."
    # Each device links the first view of its latest session.
    assert [t.session_id for t in signal.targets] == ["c", "b"]


# --- anchors ---------------------------------------------------------------------------


def test_anchors_are_unique_and_do_not_depend_on_the_upstream_order():
    views = [view(0, "/a"), view(1, "/b"), view(1, "/c"), view(1.0005, "/d"), view(2, "/e")]
    visitor = visitor_of([session("s", 0, 2)], views)
    anchors = find_signals(visitor, assign_page_views(visitor.sessions, visitor.page_views))[1]
    ids = [anchors.of(v) for v in visitor.page_views]
    assert len(set(ids)) == len(ids)
    assert anchors.of(visitor.page_views[-1]) == "view-20240501t090000"
    assert anchors.of(visitor.page_views[1]) == "view-20240501t090100-030000"
    shuffled = visitor_of(visitor.sessions, views, newest_first=False)
    again = find_signals(shuffled, assign_page_views(shuffled.sessions, shuffled.page_views))[1]
    assert sorted(again.of(v) for v in shuffled.page_views) == sorted(ids)


def test_unsorted_views_give_the_same_signals():
    visitor = demo(SIGNALS_VISITOR_ID)
    unsorted = visitor.model_copy(update={"page_views": list(reversed(visitor.page_views))})
    moment = parse_moment(SIGNALS_CONTACT_AT)
    assert found(unsorted, moment) == found(visitor, moment)


def test_an_empty_visitor_has_no_signals():
    assert found(Visitor.empty("nobody"), at(0)) == []
