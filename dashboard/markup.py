"""The few pieces of markup drawn dozens of times on one page, as Python functions.

A visitor's page shows a time, a title, a path and a referrer on every timeline row,
and a device, browser, OS and country for every session; as Jinja macros these were
most of its render time (a macro call costs more than the formatting it does). Each
returns ``Markup`` with every value escaped; the templates call them as globals:
``{{ time_tag(dt) }}``, ``{{ untrusted(text, 80) }}``, ``{{ referrer_link(url) }}``,
``{{ ago_tag(dt, now) }}``, ``{{ session_environment(session) }}``.

Text an agent filtered for is marked with ``<mark>``: the text is cut into the pieces
around each match and every piece is escaped on its own (so a match can never fall
inside an entity such as ``&amp;``, and nothing from upstream is ever left unescaped).

The house style keeps repeated markup in macros; these are its one exception, for a
big visitor's cold look-up (1,000 views) to stay within 1.15x of PostMetric's own
answer time. Every value goes through ``escape`` (quotes included, so attributes are
safe too), and tests/unit/test_markup.py pins the HTML and its escaping.
"""
from __future__ import annotations

from datetime import datetime
from functools import lru_cache
from re import Pattern

from flask import g, url_for
from markupsafe import Markup, escape

from dashboard.formatting import (
    country_code,
    country_name,
    environment,
    format_datetime,
    format_utc,
    iso,
    link_scheme_ok,
    relative_time,
    shorten,
    split_referrer,
    visible_text,
)
from dashboard.postmetric.models import Session
from dashboard.zones import agent_zone

UNKNOWN = Markup('<span class="muted">unknown</span>')
NEVER = Markup('<span class="muted">never</span>')
DIRECT = Markup('<span class="muted">Direct</span>')


def time_tag(dt: datetime | None, seconds: bool = True) -> Markup:
    """The time in the agent's zone, the exact UTC instant on hover and for machines."""
    if not dt:
        return UNKNOWN
    return Markup(
        f'<time datetime="{escape(iso(dt))}" title="{escape(format_utc(dt))}">'
        f"{escape(format_datetime(dt, agent_zone(), seconds=seconds))}</time>"
    )


def ago_tag(dt: datetime | None, now: datetime) -> Markup:
    """``3 minutes ago``, with the local and UTC times on hover."""
    if not dt:
        return NEVER
    title = f"{format_datetime(dt, agent_zone())} ({format_utc(dt)})"
    return Markup(f'<time datetime="{escape(iso(dt))}" title="{escape(title)}">{escape(relative_time(dt, now))}</time>')


def highlighted(text: str, pattern: Pattern[str] | None) -> str:
    """``text`` escaped, with each match of ``pattern`` wrapped in ``<mark>``."""
    if pattern is None:
        return escape(text)
    pieces = []
    last = 0
    for match in pattern.finditer(text):
        if match.end() > match.start():
            pieces.append(f"{escape(text[last:match.start()])}<mark>{escape(match.group())}</mark>")
            last = match.end()
    pieces.append(escape(text[last:]))
    return "".join(pieces)


def untrusted(value: str | None, limit: int = 120, empty: str = "", highlight: Pattern[str] | None = None) -> Markup:
    """Text from a stranger: hidden characters shown, isolated with ``<bdi>``, and cut at
    ``limit`` characters with the whole text one click away. ``highlight`` marks what a
    filter matched. The whole text is also on hover (``title``): the dense timeline cuts
    what does not fit its column."""
    text = visible_text(value)
    if not text:
        return Markup(f'<span class="muted">{escape(empty)}</span>')
    if len(text) > limit:
        return Markup(
            f'<details class="long-text"><summary><bdi>{highlighted(shorten(text, limit), highlight)}</bdi> '
            f'<span class="muted">({len(text):,} characters, show all)</span></summary>'
            f'<bdi class="full-text">{highlighted(text, highlight)}</bdi></details>'
        )
    return Markup(f'<bdi title="{escape(text)}">{highlighted(text, highlight)}</bdi>')


def referrer_link(url: str | None, previous_path: str | None = None, own_hosts: frozenset[str] = frozenset()) -> Markup:
    """Where the visitor came from, short: "Direct"; on the visitor's own site the path,
    or "previous page" when it is the page viewed just before; elsewhere the host. A
    clean http(s) URL is a link with the whole URL on hover; anything else is text."""
    if not url:
        return DIRECT
    if link_scheme_ok(url):
        host, path = split_referrer(url)
        if host in own_hosts:
            shown = Markup('<span class="muted">previous page</span>') if path == previous_path else _bdi(path, 60)
        else:
            shown = _bdi(host or url, 60)
        return Markup(
            f'<a class="referrer" href="{escape(url)}" rel="noopener noreferrer nofollow" target="_blank" '
            f'title="{escape(url)}">{shown}</a>'
        )
    return Markup(f'{untrusted(url, 60)} <span class="muted">(not linked)</span>')


def _bdi(text: str, limit: int) -> Markup:
    return Markup(f"<bdi>{escape(shorten(text, limit))}</bdi>")


def icon_sprite() -> str:
    """The icons' URL, looked up once per request (a big page draws a hundred icons)."""
    sprite = g.get("icon_sprite")
    if sprite is None:
        sprite = g.icon_sprite = url_for("static", filename="icons.svg")
    return sprite


def session_environment(session: Session) -> Markup:
    """Device, browser and OS with their icons, then the country: its code as a badge
(no flag emoji: most Linux desktops have no font for them) and its name."""
    parts = (session.device, session.browser, session.os, session.country)
    # Few combinations recur across sessions; long (odd) values are not worth keeping.
    if all(part is None or len(part) <= 64 for part in parts):
        return _environment_cached(*parts, icon_sprite())
    return _environment(*parts, icon_sprite())


def _environment(device: str | None, browser: str | None, os: str | None, country: str | None, sprite: str) -> Markup:
    html = "".join(
        f'<span class="env"><svg class="icon" aria-hidden="true" focusable="false"><use href="{escape(sprite)}#{kind}-{key}"></use></svg> '
        f"{escape(label)}</span> "
        for kind, key, label in environment(device, browser, os)
    )
    code = country_code(country)
    code_html = f'<span class="country-code" aria-hidden="true">{code}</span> ' if code else ""
    return Markup(f'{html}<span class="env">{code_html}{escape(country_name(country))}</span>')


_environment_cached = lru_cache(maxsize=1024)(_environment)
