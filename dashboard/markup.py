"""The few pieces of markup drawn dozens of times on one page, as Python functions.

A visitor's page shows a time, a title, a path and a referrer on every timeline row;
as Jinja macros these were most of its render time (a macro call costs more than the
formatting it does). Each returns ``Markup`` with every value escaped; the templates
call them as globals: ``{{ time_tag(dt) }}``, ``{{ untrusted(text, 80) }}``,
``{{ referrer_link(url) }}``, ``{{ ago_tag(dt, now) }}``.
"""
from __future__ import annotations

from datetime import datetime

from markupsafe import Markup, escape

from dashboard.formatting import format_datetime, format_utc, iso, link_scheme_ok, relative_time, shorten, visible_text
from dashboard.rendering import agent_zone

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


def untrusted(value: str | None, limit: int = 120, empty: str = "") -> Markup:
    """Text from a stranger: hidden characters shown, isolated with ``<bdi>``, and cut at
    ``limit`` characters with the whole text one click away."""
    text = visible_text(value)
    if not text:
        return Markup(f'<span class="muted">{escape(empty)}</span>')
    if len(text) > limit:
        return Markup(
            f'<details class="long-text"><summary><bdi>{escape(shorten(text, limit))}</bdi> '
            f'<span class="muted">({len(text):,} characters, show all)</span></summary>'
            f'<bdi class="full-text">{escape(text)}</bdi></details>'
        )
    return Markup(f"<bdi>{escape(text)}</bdi>")


def referrer_link(url: str | None) -> Markup:
    """Where the visitor came from: "Direct", a link for a clean http(s) URL, else text."""
    if not url:
        return DIRECT
    if link_scheme_ok(url):
        shown = visible_text(url)
        return Markup(
            f'<a class="referrer" href="{escape(url)}" rel="noopener noreferrer nofollow" target="_blank" '
            f'title="{escape(shown)}"><bdi>{escape(shorten(shown, 60))}</bdi></a>'
        )
    return Markup(f'{untrusted(url, 60)} <span class="muted">(not linked)</span>')
