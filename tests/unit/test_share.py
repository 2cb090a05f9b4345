"""The ticket summary, CSV/JSON exports and their file names: pure functions."""
from __future__ import annotations

import csv
import io
import json
from datetime import datetime, timedelta, timezone

import pytest

from dashboard.postmetric.models import PageView, Session, Visitor
from dashboard.timeline import assign_page_views, build_entries, contact_context
from dashboard.formatting import neutralise_cell
from dashboard.visitors import share
from tests.support.visitors import visitor_of

T0 = datetime(2024, 1, 15, 10, 0, tzinfo=timezone.utc)


def at(minutes: float) -> datetime:
    return T0 + timedelta(minutes=minutes)


def make_visitor(views: list[PageView]) -> Visitor:
    sessions = [Session(session_id="s1", first_visit_at=at(0), last_seen_at=at(60), page_views=len(views), duration=3600)]
    return visitor_of(sessions, views)


@pytest.fixture
def visitor() -> Visitor:
    views = [PageView(path=f"/p{i}", title=f"Page {i}", timestamp=at(i * 4), referrer=None) for i in range(15)]
    return make_visitor(list(reversed(views)))


def entries_of(visitor: Visitor, **filters):
    return build_entries(visitor.page_views, assign_page_views(visitor.sessions, visitor.page_views), **filters)


def test_summary_lists_the_last_ten_pages_in_the_agents_zone_and_the_link(visitor):
    text = share.ticket_summary(visitor, entries_of(visitor), zone="Europe/Berlin", link="http://x.test/visitors/visitor_123")
    lines = text.splitlines()
    assert lines[0] == "PostMetric visitor: visitor_123"
    assert "First visit: 2024-01-15 11:00:00 CET" in lines
    assert "Sessions: 1 · Page views: 15" in lines
    assert "Last 10 page views (newest first):" in lines
    pages = [line for line in lines if line.startswith("  2024-")]
    assert len(pages) == 10
    assert pages[0] == "  2024-01-15 11:56:00 CET  Page 14  /p14"
    assert lines[-1] == "Link: http://x.test/visitors/visitor_123"


def test_summary_with_a_contact_lists_what_led_up_to_it(visitor):
    contact = contact_context(visitor.page_views, at(21))
    text = share.ticket_summary(visitor, entries_of(visitor, order="asc"), zone="UTC", link="L", contact=contact)
    assert "Contact: 2024-01-15 10:21:00 UTC" in text
    assert "Was on “Page 5” (/p5), viewed 1 min 0 s before contact." in text
    assert "Last 6 page views (before contact):" in text
    assert "/p6" not in text


def test_summary_text_is_plain_and_defused():
    views = [PageView(path="/a\u202eb", title="<b>x</b>\x00", timestamp=at(1), referrer=None)]
    visitor = make_visitor(views)
    text = share.ticket_summary(visitor, entries_of(visitor), zone="UTC", link="L", filters="q\u202e")
    assert "\u202e" not in text and "\x00" not in text
    assert "<b>x</b>[U+0000]" in text  # plain text: nothing to escape, nothing hidden


@pytest.mark.parametrize(
    "minutes,sentence",
    [
        (-5, "No page views before the contact; the first came 5 min 0 s after contact."),
        (100, "No activity near the contact: the last page view before it was 44 min 0 s earlier, on “Page 14” (/p14)."),
    ],
)
def test_contact_sentences(visitor, minutes, sentence):
    assert share.contact_sentence(contact_context(visitor.page_views, at(minutes))) == sentence


@pytest.mark.parametrize(
    "cell,expected",
    [
        ("=HYPERLINK(\"http://evil\")", "'=HYPERLINK(\"http://evil\")"),
        ("+1+1", "'+1+1"),
        ("-2+3", "'-2+3"),
        ("@SUM(A1)", "'@SUM(A1)"),
        ("\tcmd", "'\tcmd"),
        ("\rcmd", "'\rcmd"),
        ("  =1+1", "'  =1+1"),
        ("/checkout", "/checkout"),
        ("Checkout = fun", "Checkout = fun"),
        ("", ""),
    ],
)
def test_csv_cells_that_a_spreadsheet_would_run_are_defused(cell, expected):
    assert neutralise_cell(cell) == expected


def test_csv_and_json_exports():
    views = [
        PageView(path="/=cmd", title="=1+1", timestamp=at(2), referrer="@evil"),
        PageView(path="/é", title=None, timestamp=at(1), referrer=None),
    ]
    visitor = make_visitor(views)
    rows = share.export_rows(entries_of(visitor), "Europe/Berlin", at(1.5))
    body = share.timeline_csv(rows)
    assert body.startswith(b"\xef\xbb\xbf")
    parsed = list(csv.DictReader(io.StringIO(body.decode("utf-8-sig"))))
    assert [r["path"] for r in parsed] == ["/=cmd", "/é"]
    assert parsed[0]["title"] == "'=1+1" and parsed[0]["referrer"] == "'@evil"
    assert parsed[0]["timestamp_utc"] == "2024-01-15T10:02:00.000Z"
    assert parsed[0]["time_local"] == "2024-01-15 11:02:00 CET"
    assert parsed[0]["relative_to_contact"] == "30 s after contact"
    assert parsed[1]["session_id"] == "s1"
    document = json.loads(share.timeline_json(visitor, rows, filters={"q": "x"}, exported_at=at(90), zone="Europe/Berlin"))
    assert document["visitorId"] == "visitor_123" and document["exported"] == 2
    assert document["pageViews"][0]["title"] == "=1+1"  # JSON keeps the data as it is
    assert document["filters"] == {"q": "x"} and document["exportedAt"] == "2024-01-15T11:30:00.000Z"


@pytest.mark.parametrize(
    "visitor_id,name",
    [
        ("visitor_123", "visitor_123_timeline_20240115T100000Z.csv"),
        ("odd/id ?#%&é", "odd_id_e_timeline_20240115T100000Z.csv"),
        ("../../etc/passwd", "etc_passwd_timeline_20240115T100000Z.csv"),
        ('"; rm -rf /', "rm_-rf_timeline_20240115T100000Z.csv"),
        ("日本", "visitor_timeline_20240115T100000Z.csv"),
        ("..", "visitor_timeline_20240115T100000Z.csv"),
        ("\u202egpj.exe\tx", "gpj.exe_x_timeline_20240115T100000Z.csv"),
        ("x" * 300, "x" * 60 + "_timeline_20240115T100000Z.csv"),
    ],
)
def test_export_file_names_name_the_visitor_safely(visitor_id, name):
    assert share.export_filename(visitor_id, T0, "csv") == name
