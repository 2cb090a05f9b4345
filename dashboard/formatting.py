"""Pure formatting helpers used by the templates (registered as Jinja filters)."""
from __future__ import annotations

import math
import re
import unicodedata
from datetime import datetime, timezone
from functools import lru_cache
from urllib.parse import urlsplit
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import humanize
import pycountry

# The one rule for hidden characters in text from strangers: control characters
# (category Cc) and every bidi control that can reorder text around it (the marks
# ALM U+061C, LRM and RLM, embeddings, overrides, isolates). Tab is in the set only
# to be shown as a plain space: it hides nothing and reorders nothing, but a title
# or message must not carry one into a ticket or a link.
HIDDEN_CHARACTERS = re.compile("[\x00-\x1f\x7f-\x9f\u061c\u200e\u200f\u202a-\u202e\u2066-\u2069]")


def _mark(match: re.Match[str]) -> str:
    character = match.group()
    return " " if character == "\t" else f"[U+{ord(character):04X}]"


@lru_cache(maxsize=1024)
def safe_zone(name: str | None) -> ZoneInfo:
    try:
        return ZoneInfo(name or "UTC")
    except (ZoneInfoNotFoundError, ValueError):
        return ZoneInfo("UTC")


def visible_text(value: str | None) -> str:
    """The text with control and bidi-control characters shown as visible ``[U+XXXX]``
    marks, and tabs as spaces (see HIDDEN_CHARACTERS).

    Such characters come from strangers (page titles, paths, referrers); written as
    marks they can neither reorder the page nor hide what the text really holds.
    """
    if not value:
        return ""
    return HIDDEN_CHARACTERS.sub(_mark, value)


def shorten(value: str, limit: int) -> str:
    """``value`` cut to ``limit`` characters with an ellipsis when it is longer."""
    return value if len(value) <= limit else value[: max(limit - 1, 1)] + "…"


def format_datetime(moment: datetime | None, zone: str | None = "UTC", *, seconds: bool = True) -> str:
    """``2024-01-15 10:30:00 CET`` in the agent's zone; an em dash when unknown."""
    if moment is None:
        return "—"
    try:
        local = moment.astimezone(safe_zone(zone))
    except OverflowError:  # the calendar's first or last day, moved past its end
        local = moment.astimezone(timezone.utc)
    return f"{_clock(local, seconds)} {local.tzname() or ''}"


def _clock(moment: datetime, seconds: bool = True) -> str:
    """``2024-01-15 10:30:00`` (or without seconds): sliced from isoformat, which is
    half the cost of strftime, and a page formats a few hundred times."""
    return moment.isoformat(" ", "seconds")[: 19 if seconds else 16]


def format_utc(moment: datetime | None) -> str:
    if moment is None:
        return ""
    return f"{_clock(moment.astimezone(timezone.utc))} UTC"


def iso(moment: datetime | None) -> str:
    """The exact instant for ``<time datetime>``: ISO 8601 in UTC with milliseconds."""
    if moment is None:
        return ""
    return moment.astimezone(timezone.utc).isoformat(timespec="milliseconds").replace("+00:00", "Z")


# Units of a duration, largest first; a duration is written in the largest one that
# fits and the next one down.
DURATION_UNITS = (("d", 86_400), ("h", 3_600), ("min", 60), ("s", 1))


def _largest_unit(total: int) -> int:
    return next(i for i, (_, size) in enumerate(DURATION_UNITS) if total >= size or size == 1)


def format_duration(seconds: float | int | None, *, round_up: bool = False) -> str:
    """How long something lasts, the one way the dashboard writes it: ``42 s``,
    ``15 min 0 s``, ``2 h 5 min``, ``3 d 4 h``, ``0.2 s`` (tenths only below 10 s);
    an em dash when unknown.

    Seconds are rounded to the nearest; the smaller unit shown is then cut, not
    rounded (1 h 2 min 50 s is ``1 h 2 min``). With ``round_up`` both are rounded up
    instead, for a wait that must never be promised too early.
    """
    if seconds is None or not math.isfinite(seconds):
        return "—"
    if seconds <= 0:
        return "0 s"
    if seconds < 10 and seconds != int(seconds):
        tenths = math.ceil(seconds * 10) if round_up else round(seconds * 10)
        if tenths < 100:
            return f"{tenths / 10:g} s"
    total = math.ceil(seconds) if round_up else int(round(seconds))
    unit = _largest_unit(total)
    if round_up and unit + 1 < len(DURATION_UNITS):
        step = DURATION_UNITS[unit + 1][1]
        total = -(-total // step) * step
        unit = _largest_unit(total)  # 59 min 59.5 s rounds up to 1 h 0 min
    if unit + 1 == len(DURATION_UNITS):
        return f"{total} s"
    (large, large_size), (small, small_size) = DURATION_UNITS[unit], DURATION_UNITS[unit + 1]
    count, rest = divmod(total, large_size)
    return f"{count} {large} {rest // small_size} {small}"


def relative_time(moment: datetime | None, now: datetime) -> str:
    """``3 minutes ago``; ``in 2 minutes`` for a clock that runs ahead."""
    if moment is None:
        return "never"
    return humanize.naturaltime(moment, when=now)


@lru_cache(maxsize=1024)
def country_name(code: str | None) -> str:
    if not code:
        return "Unknown country"
    country = pycountry.countries.get(alpha_2=code.strip().upper()) if len(code.strip()) == 2 else None
    return country.name if country else visible_text(code)


@lru_cache(maxsize=1024)
def country_code(code: str | None) -> str:
    """The ISO 3166-1 alpha-2 code in capitals (drawn as a badge beside the name, where a
    flag emoji would need an emoji font that most Linux desktops lack), or ``""``."""
    code = (code or "").strip()
    if len(code) != 2 or not code.isascii() or not code.isalpha():
        return ""
    return code.upper()


# Names whose usual spelling is not just a capital first letter.
KNOWN_NAMES = {"macos": "macOS", "ios": "iOS", "ipados": "iPadOS", "chromeos": "ChromeOS", "os x": "OS X"}


@lru_cache(maxsize=1024)
def title_case(value: str | None, unknown: str = "Unknown") -> str:
    if not value:
        return unknown
    value = visible_text(value)
    return KNOWN_NAMES.get(value.lower(), value[:1].upper() + value[1:])


# The icons drawn in static/icons.svg (symbol "<kind>-<key>"); anything else is "<kind>-other".
ICONS = {
    "device": ("desktop", "mobile", "tablet"),
    "browser": ("chrome", "firefox", "safari", "edge"),
    "os": ("windows", "macos", "ios", "android", "linux"),
}


def environment(device: str | None, browser: str | None, os: str | None) -> tuple[tuple[str, str, str], ...]:
    """``(kind, icon key, label)`` for a session's device, browser and OS, in that order
    (markup.session_environment draws them and keeps the HTML)."""
    parts = []
    for kind, name in (("device", device), ("browser", browser), ("os", os)):
        key = (name or "").lower().replace(" ", "")
        parts.append((kind, key if key in ICONS[kind] else "other", title_case(name)))
    return tuple(parts)


@lru_cache(maxsize=4096)
def split_referrer(url: str) -> tuple[str, str]:
    """A referrer's host (lower case, port kept) and its path with the query, as the
    timeline compares them with the visitor's own paths; ``("", "")`` when unreadable."""
    try:
        parts = urlsplit(url)
    except ValueError:
        return "", ""
    path = parts.path or "/"
    return parts.netloc.lower(), f"{path}?{parts.query}" if parts.query else path


def link_scheme_ok(url: str | None) -> bool:
    """Only http and https referrers become links, and only ones with nothing hidden in them."""
    if not url or visible_text(url) != url:
        return False
    lowered = url.lower()
    return lowered.startswith("http://") or lowered.startswith("https://")


# OWASP's rule for CSV injection: a cell that starts with = + - @ (or their full-width
# forms, which spreadsheets read the same), or with TAB, CR, LF or NUL, or with white
# space (a no-break space too) before one of those, is written with a leading "'".
FORMULA_START = re.compile(r"[\t\r\n\x00]|[\s\x00\u200b-\u200d\u2060\ufeff]*[=+\-@]")


def neutralise_cell(value: object) -> str:
    """A CSV cell as text, with ``'`` before anything a spreadsheet could evaluate."""
    text = "" if value is None else str(value)
    if not text or (text[0].isascii() and text[0].isalnum()):
        return text  # the common case, decided by its first character
    if FORMULA_START.match(unicodedata.normalize("NFKC", text)):
        return "'" + text
    return text
