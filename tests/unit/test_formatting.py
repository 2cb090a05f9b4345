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


@pytest.mark.parametrize("seconds,text", [(900, "15 min 0 s"), (42, "42 s"), (3720, "1 h 2 min"), (0, "0 s"), (None, "—"), (-5, "0 s")])
def test_durations(seconds, text):
    assert f.format_duration(seconds) == text


def test_relative_time():
    now = datetime(2024, 1, 1, 12, 0, tzinfo=timezone.utc)
    assert f.relative_time(now - timedelta(minutes=3), now) == "3 minutes ago"
    assert f.relative_time(None, now) == "never"


def test_countries():
    assert f.country_name("US") == "United States"
    assert f.country_flag("us") == "\U0001f1fa\U0001f1f8"
    assert f.country_name(None) == "Unknown country"
    assert f.country_flag("") == "" and f.country_flag("<b>") == ""
    assert f.country_name("ZZ") == "ZZ"
