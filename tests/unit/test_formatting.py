"""Formatting helpers: untrusted text, times, countries."""
from __future__ import annotations

from datetime import datetime, timedelta, timezone

import pytest

from dashboard import formatting as f


def test_control_and_bidi_characters_become_visible_marks():
    assert f.visible_text("abc\u202edef") == "abc[U+202E]def"
    assert f.visible_text("a\x00b\x1bc\x7f") == "a[U+0000]b[U+001B]c[U+007F]"
    assert f.visible_text("\u2066x\u2069") == "[U+2066]x[U+2069]"
    assert f.visible_text("שלום עולם") == "שלום עולם"  # right-to-left letters stay as they are
    assert f.visible_text(None) == ""


@pytest.mark.parametrize(
    ("text", "shown"),
    [
        ("a\u061cb", "a[U+061C]b"),  # ARABIC LETTER MARK is a bidi control like LRM and RLM
        ("a\u200eb\u200fc", "a[U+200E]b[U+200F]c"),
        ("Cart\tCheckout", "Cart Checkout"),  # a tab hides nothing: it is shown as a space
        ("line\nbreak\r", "line[U+000A]break[U+000D]"),
        ("\u0627\u0644\u0639\u0631\u0628\u064a\u0629", "\u0627\u0644\u0639\u0631\u0628\u064a\u0629"),  # Arabic letters stay
    ],
)
def test_one_rule_for_hidden_characters(text, shown):
    assert f.visible_text(text) == shown


def test_a_url_with_a_tab_or_a_letter_mark_is_not_linked():
    assert not f.link_scheme_ok("https://x.example/\tpath")
    assert not f.link_scheme_ok("https://x.example/\u061cpath")


def test_shorten_keeps_short_text():
    assert f.shorten("abc", 5) == "abc"
    assert f.shorten("abcdef", 4) == "abc…"


@pytest.mark.parametrize(
    "url,ok",
    [
        ("https://google.com", True),
        ("http://x.example/a?b=c", True),
        ("HTTPS://X.EXAMPLE", True),
        ("javascript:alert(1)", False),
        (" javascript:alert(1)", False),
        ("JaVaScRiPt:alert(1)", False),
        ("data:text/html,<script>", False),
        ("//evil.example", False),
        ("https://evil.example/\u202eexe.gpj", False),
        ("", False),
        (None, False),
    ],
)
def test_only_clean_http_urls_become_links(url, ok):
    assert f.link_scheme_ok(url) is ok


def test_times_in_the_agents_zone_across_a_dst_change():
    before = datetime(2024, 3, 31, 0, 30, tzinfo=timezone.utc)
    after = before + timedelta(hours=2)
    assert f.format_datetime(before, "Europe/Berlin") == "2024-03-31 01:30:00 CET"
    assert f.format_datetime(after, "Europe/Berlin") == "2024-03-31 04:30:00 CEST"
    assert f.format_datetime(before, "Not/AZone") == "2024-03-31 00:30:00 UTC"
    assert f.format_datetime(None) == "—"
    assert f.iso(before) == "2024-03-31T00:30:00.000Z"


@pytest.mark.parametrize(
    "seconds,text",
    [
        (900, "15 min 0 s"),
        (42, "42 s"),
        (3720, "1 h 2 min"),
        (3770, "1 h 2 min"),  # the smaller unit is cut, not rounded
        (774.9, "12 min 55 s"),  # seconds are rounded
        (0, "0 s"),
        (None, "—"),
        (-5, "0 s"),
        (float("inf"), "—"),
        (float("nan"), "—"),
        (0.2, "0.2 s"),  # tenths below 10 s: a short time-out
        (1.5, "1.5 s"),
        (9.96, "10 s"),
        (4 * 86400 + 180, "4 d 0 h"),
        (86400 + 3 * 3600 + 59 * 60, "1 d 3 h"),
    ],
)
def test_durations(seconds, text):
    assert f.format_duration(seconds) == text


@pytest.mark.parametrize(
    "seconds,text",
    [(0.21, "0.3 s"), (41.2, "42 s"), (119.5, "2 min 0 s"), (7530, "2 h 6 min"), (3599.5, "1 h 0 min"), (86399, "1 d 0 h"), (7200, "2 h 0 min")],
)
def test_durations_rounded_up_never_promise_too_early(seconds, text):
    assert f.format_duration(seconds, round_up=True) == text


def test_relative_time():
    now = datetime(2024, 1, 1, 12, 0, tzinfo=timezone.utc)
    assert f.relative_time(now - timedelta(minutes=3), now) == "3 minutes ago"
    assert f.relative_time(None, now) == "never"


def test_countries():
    assert f.country_name("US") == "United States"
    assert f.country_code(" us ") == "US"
    assert f.country_name(None) == "Unknown country"
    assert f.country_code("") == "" and f.country_code("<b>") == "" and f.country_code("ÄÖ") == ""
    assert f.country_name("ZZ") == "ZZ"


UTC = timezone.utc


@pytest.mark.parametrize(
    "moment,zone,text",
    [
        # New York springs forward at 02:00 local (07:00 UTC): 01:59:59 EST, then 03:00 EDT.
        (datetime(2024, 3, 10, 6, 59, 59, tzinfo=UTC), "America/New_York", "2024-03-10 01:59:59 EST"),
        (datetime(2024, 3, 10, 7, 0, tzinfo=UTC), "America/New_York", "2024-03-10 03:00:00 EDT"),
        # ... and falls back: 01:30 happens twice, told apart by the abbreviation.
        (datetime(2024, 11, 3, 5, 30, tzinfo=UTC), "America/New_York", "2024-11-03 01:30:00 EDT"),
        (datetime(2024, 11, 3, 6, 30, tzinfo=UTC), "America/New_York", "2024-11-03 01:30:00 EST"),
        # Europe leaves summer time on the last Sunday of October at 01:00 UTC.
        (datetime(2024, 10, 27, 0, 59, tzinfo=UTC), "Europe/London", "2024-10-27 01:59:00 BST"),
        (datetime(2024, 10, 27, 1, 0, tzinfo=UTC), "Europe/London", "2024-10-27 01:00:00 GMT"),
        # The southern hemisphere has summer time in January.
        (datetime(2024, 1, 15, 10, 30, tzinfo=UTC), "Australia/Sydney", "2024-01-15 21:30:00 AEDT"),
        (datetime(2024, 7, 15, 10, 30, tzinfo=UTC), "Australia/Sydney", "2024-07-15 20:30:00 AEST"),
        # Offsets that are not whole hours, and a date line crossing.
        (datetime(2024, 1, 15, 10, 30, tzinfo=UTC), "Asia/Kolkata", "2024-01-15 16:00:00 IST"),
        (datetime(2024, 1, 15, 10, 30, tzinfo=UTC), "Asia/Kathmandu", "2024-01-15 16:15:00 +0545"),
        (datetime(2024, 1, 15, 23, 30, tzinfo=UTC), "Pacific/Auckland", "2024-01-16 12:30:00 NZDT"),
        (datetime(2024, 1, 15, 10, 30, tzinfo=UTC), "UTC", "2024-01-15 10:30:00 UTC"),
        (datetime(2024, 1, 15, 10, 30, tzinfo=UTC), None, "2024-01-15 10:30:00 UTC"),
    ],
)
def test_times_in_many_zones_and_around_dst_changes(moment, zone, text):
    assert f.format_datetime(moment, zone) == text
    # The exact instant for <time datetime> and the hover text never depend on the zone.
    assert f.iso(moment).endswith("Z")
    assert f.format_utc(moment).endswith(" UTC")


def test_minutes_only_and_offset_input_are_shown_in_the_agents_zone():
    moment = datetime(2024, 6, 1, 12, 0, tzinfo=timezone(timedelta(hours=-7)))
    assert f.format_datetime(moment, "Europe/Berlin", seconds=False) == "2024-06-01 21:00 CEST"
    assert f.iso(moment) == "2024-06-01T19:00:00.000Z"
    assert f.format_utc(moment) == "2024-06-01 19:00:00 UTC"


def test_relative_times_in_hours_and_days():
    now = datetime(2024, 3, 31, 12, 0, tzinfo=UTC)
    assert f.relative_time(now - timedelta(hours=3), now) == "3 hours ago"
    assert f.relative_time(now - timedelta(days=2), now) == "2 days ago"


@pytest.mark.parametrize("name,label", [("macos", "macOS"), ("ios", "iOS"), ("chrome", "Chrome"), (None, "Unknown")])
def test_labels_for_systems_and_browsers(name, label):
    assert f.title_case(name) == label


def test_times_at_the_ends_of_the_calendar_do_not_overflow():
    first = datetime(1, 1, 1, tzinfo=timezone.utc)
    last = datetime(9999, 12, 31, 23, 59, tzinfo=timezone.utc)
    assert f.format_datetime(first, "America/New_York").endswith("1-01-01 00:00:00 UTC")  # shown in UTC
    assert f.format_datetime(last, "Asia/Tokyo") == "9999-12-31 23:59:00 UTC"


@pytest.mark.parametrize("cell", ["=1+1", "+1", "-1", "@SUM(A1)", "\tx", "\rx", "  =HYPERLINK(\"x\")"])
def test_csv_cells_that_a_spreadsheet_would_run_are_neutralised(cell):
    assert f.neutralise_cell(cell) == "'" + cell
    assert f.neutralise_cell("plain") == "plain" and f.neutralise_cell(None) == "" and f.neutralise_cell(12) == "12"


@pytest.mark.parametrize(
    ("url", "parts"),
    [
        ("https://Shop.Example.com/cart?step=2", ("shop.example.com", "/cart?step=2")),
        ("https://www.google.com", ("www.google.com", "/")),
        ("http://[x", ("", "")),
    ],
)
def test_a_referrer_splits_into_host_and_path(url, parts):
    assert f.split_referrer(url) == parts
