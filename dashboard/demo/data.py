"""Demo data for the bundled PostMetric stand-in.

Every visitor here is deterministic: fixed dates and seeded ``random.Random`` generators,
so tests, screenshots and benchmarks see the same data on every run. The one exception
is ``visitor_live``, whose time stamps are computed relative to the ``now`` passed in so
that the dashboard can show "active now".

``build_visitor_payload`` returns the documented ``data`` object (see
``/work/shared/postmetric-visitor-api.md``): time stamps with milliseconds and ``Z``,
sessions and page views newest first, ``title``/``referrer`` omitted when absent.
"""
from __future__ import annotations

import hashlib
import random
import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from functools import lru_cache
from typing import Any

__all__ = [
    "DEMO_API_KEY",
    "STAGED_FAILURE_PREFIX",
    "is_staged_failure",
    "DEMO_VISITORS",
    "FAILURE_VISITORS",
    "DemoVisitor",
    "EXAMPLE_VISITOR_ID",
    "RETURNING_VISITOR_ID",
    "LIVE_VISITOR_ID",
    "UNKNOWN_VISITOR_ID",
    "LARGE_VISITOR_ID",
    "HUGE_VISITOR_ID",
    "HOSTILE_VISITOR_ID",
    "SIGNALS_VISITOR_ID",
    "SIGNALS_CONTACT_AT",
    "ODD_VISITOR_ID",
    "HUGE_TOTALS",
    "build_visitor_payload",
    "iso_ms",
]

#: The stand-in's API key: fixed so that demo configuration and tests agree on it.
DEMO_API_KEY: str = "pm_" + hashlib.sha256(b"visitor-lookup-demo").hexdigest()

#: The tracked website used in referrers for in-site navigation (the documentation's example).
SITE = "https://your-domain.com"

EXAMPLE_VISITOR_ID = "visitor_123"
RETURNING_VISITOR_ID = "3f2b8c1e-7a4d-4e9b-9c61-2d5f8a0b7e34"
LIVE_VISITOR_ID = "visitor_live"
UNKNOWN_VISITOR_ID = "visitor_unknown"
LARGE_VISITOR_ID = "visitor_large"
HUGE_VISITOR_ID = "visitor_huge"
HOSTILE_VISITOR_ID = "visitor_hostile"
SIGNALS_VISITOR_ID = "visitor_signals"
#: The ticket moment that goes with visitor_signals (its "last page before contact").
SIGNALS_CONTACT_AT = "2024-02-11T19:10:00Z"
# An ID a browser would rewrite if put in a path segment: exercises the query-form URLs.
ODD_VISITOR_ID = "odd/id ?#%&é"

#: True (sessions, page views) of visitor_huge; the stand-in reports these even when capping.
HUGE_TOTALS: tuple[int, int] = (2000, 20000)


@dataclass(frozen=True)
class DemoVisitor:
    """One visitor ID worth trying in the demo, with a line for the README."""

    visitor_id: str
    label: str
    description: str


DEMO_VISITORS: list[DemoVisitor] = [
    DemoVisitor(
        EXAMPLE_VISITOR_ID,
        "Documentation example",
        "The API documentation's example: 5 sessions and 42 page views between "
        "15 and 20 January 2024; one page view falls outside every session.",
    ),
    DemoVisitor(
        RETURNING_VISITOR_ID,
        "Returning customer",
        "A UUID v4 visitor over six weeks on desktop, mobile and tablet, several "
        "browsers, systems and countries (one session without a country).",
    ),
    DemoVisitor(
        LIVE_VISITOR_ID,
        "Active now",
        "A session in progress: the latest page view is two and a half minutes old.",
    ),
    DemoVisitor(
        UNKNOWN_VISITOR_ID,
        "Unknown visitor",
        "PostMetric has no data for this ID: 200 with zero counts and empty arrays.",
    ),
    DemoVisitor(
        LARGE_VISITOR_ID,
        "Large visitor",
        "100 sessions and 1,000 page views: exactly PostMetric's caps.",
    ),
    DemoVisitor(
        HUGE_VISITOR_ID,
        "Huge visitor",
        "2,000 sessions and 20,000 page views; the arrays are capped at 100 and "
        "1,000 but the counts tell the truth (\"showing N of M\").",
    ),
    DemoVisitor(
        HOSTILE_VISITOR_ID,
        "Hostile content",
        "Titles, paths and referrers with markup, javascript: and data: URLs, "
        "bidi overrides, control characters, template syntax and very long text.",
    ),
    DemoVisitor(
        SIGNALS_VISITOR_ID,
        "What stands out",
        "Two sessions on two devices with an error page, a 404, repeated attempts at "
        "payment, a loop between cart and shipping and a long stay; open it with "
        f"at={SIGNALS_CONTACT_AT} for the last page before contact.",
    ),
    DemoVisitor(
        ODD_VISITOR_ID,
        "Odd visitor ID",
        "A known visitor whose ID holds /, space, ?, #, %, & and non-ASCII text.",
    ),
]

#: The stand-in answers every ID that starts with this by failing on purpose (or as an
#: unknown visitor); see ``dashboard.demo.fake_api``.
STAGED_FAILURE_PREFIX = "fail-"


def is_staged_failure(api_key: str, visitor_id: str) -> bool:
    """Whether a look-up asks the stand-in for one of its failures on purpose.

    Only with the demo key, which no real PostMetric account has: a real site's visitor
    whose ID happens to start with ``fail-`` is an ordinary look-up.
    """
    return api_key == DEMO_API_KEY and visitor_id.startswith(STAGED_FAILURE_PREFIX)


#: Reserved IDs that make the stand-in fail on purpose (see ``dashboard.demo.fake_api``).
FAILURE_VISITORS: list[DemoVisitor] = [
    DemoVisitor("fail-400", "400 Bad Request", "Error envelope: the server rejects the ID."),
    DemoVisitor("fail-401", "401 Unauthorized", "Error envelope as for a wrong API key."),
    DemoVisitor("fail-403", "403 Forbidden", "Error envelope: the key may not read this site."),
    DemoVisitor("fail-404", "404 envelope", "Error envelope 404: PostMetric has no such visitor."),
    DemoVisitor("fail-404-html", "404 HTML", "An HTML 404 page, as from a wrong base URL."),
    DemoVisitor("fail-429", "429 with Retry-After", "Rate limited; Retry-After: 30."),
    DemoVisitor("fail-429-bare", "429 bare", "Rate limited with no Retry-After or rate headers."),
    DemoVisitor("fail-500", "500", "Error envelope with the server's own message."),
    DemoVisitor("fail-502", "502 HTML", "An HTML Bad Gateway page from a proxy."),
    DemoVisitor("fail-503", "503 with Retry-After", "Error envelope; Retry-After: 2."),
    DemoVisitor("fail-504", "504 HTML", "An HTML Gateway Time-out page from a proxy."),
    DemoVisitor("fail-empty", "Empty body", "200 with an empty body."),
    DemoVisitor("fail-truncated", "Truncated JSON", "200 whose JSON stops half-way."),
    DemoVisitor("fail-html", "HTML instead of JSON", "200 with an HTML sign-in page."),
    DemoVisitor("fail-wrong-types", "Wrong types", 'Valid JSON with "sessionCount": "five".'),
    DemoVisitor("fail-sessions-object", "Sessions object", "`sessions` is an object, not an array."),
    DemoVisitor("fail-null-entries", "Null entries", "`sessions` and `pageViews` are [null]."),
    DemoVisitor("fail-huge-body", "Huge body", "200 with about 25 MB of valid JSON, streamed."),
    DemoVisitor("fail-slow", "Slow", "Answers like visitor_123 after slow_seconds (15 s)."),
    DemoVisitor(
        "fail-flaky-2",
        "Flaky",
        "fail-flaky-N: the first N requests answer 503, then it answers like visitor_123.",
    ),
    DemoVisitor("fail-drop", "Dropped connection", "The server closes the connection unanswered."),
]


def iso_ms(dt: datetime) -> str:
    """Serialise like PostMetric: UTC, milliseconds, ``Z`` (``2024-01-15T10:30:00.000Z``)."""
    if dt.tzinfo is None:
        dt = dt.replace(tzinfo=timezone.utc)
    dt = dt.astimezone(timezone.utc)
    return dt.strftime("%Y-%m-%dT%H:%M:%S") + f".{dt.microsecond // 1000:03d}Z"


def _utc(*args: int) -> datetime:
    return datetime(*args, tzinfo=timezone.utc)  # type: ignore[misc]


def _session(
    session_id: str,
    start: datetime,
    end: datetime,
    page_views: int,
    device: str,
    browser: str,
    os: str,
    country: str | None,
) -> dict[str, Any]:
    """One session object in the documented key order."""
    return {
        "sessionId": session_id,
        "firstVisitAt": iso_ms(start),
        "lastSeenAt": iso_ms(end),
        "pageViews": page_views,
        "duration": round((end - start).total_seconds()),
        "device": device,
        "browser": browser,
        "os": os,
        "country": country,
    }


def _page_view(
    path: str, timestamp: datetime, title: str | None = None, referrer: str | None = None
) -> dict[str, Any]:
    """One page-view object; ``title``/``referrer`` are omitted (not null) when absent."""
    view: dict[str, Any] = {"path": path}
    if title is not None:
        view["title"] = title
    view["timestamp"] = iso_ms(timestamp)
    if referrer is not None:
        view["referrer"] = referrer
    return view


def _spread(start: datetime, end: datetime, n: int) -> list[datetime]:
    """``n`` instants from ``start`` to ``end`` inclusive, evenly spaced, whole milliseconds."""
    if n == 1:
        return [start]
    step = (end - start) / (n - 1)
    return [start + timedelta(milliseconds=round((step * i).total_seconds() * 1000)) for i in range(n)]


# A page spec: (path, title or None, referrer or None). Referrer None means "direct".
_PageSpec = tuple[str, str | None, str | None]


def _internal(path: str) -> str:
    return SITE + path


@dataclass(frozen=True)
class _Record:
    """A visitor's full data, already serialised; ``sessions``/``page_views`` newest first."""

    sessions: tuple[dict[str, Any], ...]
    page_views: tuple[dict[str, Any], ...]


def _record(sessions: list[dict[str, Any]], page_views: list[dict[str, Any]]) -> _Record:
    # Same-format ISO strings sort chronologically, so a string sort is a time sort.
    return _Record(
        tuple(sorted(sessions, key=lambda s: s["firstVisitAt"], reverse=True)),
        tuple(sorted(page_views, key=lambda v: v["timestamp"], reverse=True)),
    )


def _scripted_sessions(
    specs: Sequence[tuple[str, datetime, datetime, tuple[str, str, str, str | None], Sequence[_PageSpec]]],
) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """Sessions whose page views are spread evenly over their window (first at start, last at end)."""
    sessions: list[dict[str, Any]] = []
    views: list[dict[str, Any]] = []
    for session_id, start, end, (device, browser, os, country), pages in specs:
        sessions.append(_session(session_id, start, end, len(pages), device, browser, os, country))
        for when, (path, title, referrer) in zip(_spread(start, end, len(pages)), pages):
            views.append(_page_view(path, when, title, referrer))
    return sessions, views


# --- visitor_123: the documentation's example ------------------------------------------


def _example_visitor() -> _Record:
    """5 sessions, 42 page views, 2024-01-15T10:30Z to 2024-01-20T14:22Z.

    The sessions' ``pageViews`` add up to 41: the 42nd view (``/order-status`` on the 18th)
    lies outside every session window, to show a view that belongs to no session.
    """
    desktop_chrome_us = ("desktop", "chrome", "windows", "US")
    specs = [
        (
            "session_456",
            _utc(2024, 1, 15, 10, 30),
            _utc(2024, 1, 15, 10, 45),
            desktop_chrome_us,
            [
                ("/", "Homepage", "https://google.com"),
                ("/products", "All products", _internal("/")),
                ("/products/widget-pro", "Widget Pro", _internal("/products")),
                ("/products/widget-pro/reviews", "Widget Pro reviews", _internal("/products/widget-pro")),
                ("/pricing", "Pricing", _internal("/products/widget-pro/reviews")),
                ("/products/widget-mini", "Widget Mini", _internal("/pricing")),
                ("/about", None, _internal("/products/widget-mini")),  # page without a <title>
                ("/contact", "Contact us", _internal("/about")),
            ],
        ),
        (
            "session_457",
            _utc(2024, 1, 16, 12, 0),
            _utc(2024, 1, 16, 12, 7),
            ("mobile", "safari", "ios", "US"),
            [
                ("/products/widget-pro", "Widget Pro", None),  # direct: typed or bookmarked
                ("/products/widget-pro/specs", "Widget Pro specifications", _internal("/products/widget-pro")),
                ("/products/widget-pro", "Widget Pro", _internal("/products/widget-pro/specs")),
                ("/cart", "Your cart", _internal("/products/widget-pro")),
                ("/shipping", "Shipping and delivery", _internal("/cart")),
                ("/cart", "Your cart", _internal("/shipping")),
                ("/account/login", "Sign in", _internal("/cart")),
            ],
        ),
        (
            "session_458",
            _utc(2024, 1, 17, 20, 40),
            _utc(2024, 1, 17, 20, 58),
            ("tablet", "chrome", "android", "CA"),
            [
                ("/blog/choosing-a-widget", "How to choose a widget", "https://www.bing.com/"),
                ("/blog", "Blog", _internal("/blog/choosing-a-widget")),
                ("/blog/widget-care", "Caring for your widget", _internal("/blog")),
                ("/products", "All products", _internal("/blog/widget-care")),
                ("/products/widget-pro", "Widget Pro", _internal("/products")),
                ("/products/widget-pro/reviews", "Widget Pro reviews", _internal("/products/widget-pro")),
                ("/cart", "Your cart", _internal("/products/widget-pro/reviews")),
                ("/account/login", "Sign in", _internal("/cart")),
                ("/account", "Your account", _internal("/account/login")),
                ("/account/orders", "Your orders", _internal("/account")),
            ],
        ),
        (
            "session_459",
            _utc(2024, 1, 19, 9, 5),
            _utc(2024, 1, 19, 9, 17, 30),
            ("desktop", "firefox", "macos", "US"),
            [
                ("/sale", "Winter sale", "https://t.co/x7Kq2mP9Za"),
                ("/products/widget-pro", "Widget Pro", _internal("/sale")),
                ("/cart", "Your cart", _internal("/products/widget-pro")),
                ("/checkout", "Checkout", _internal("/cart")),
                ("/checkout/shipping", "Checkout: shipping", _internal("/checkout")),
                ("/checkout/payment", "Checkout: payment", _internal("/checkout/shipping")),
                ("/cart", "Your cart", _internal("/checkout/payment")),
            ],
        ),
        (
            "session_460",
            _utc(2024, 1, 20, 14, 2),
            _utc(2024, 1, 20, 14, 22),
            desktop_chrome_us,
            [
                ("/", "Homepage", "https://google.com/search?q=widget+pro+discount"),
                ("/sale", "Winter sale", _internal("/")),
                ("/products/widget-pro", "Widget Pro", _internal("/sale")),
                ("/cart", "Your cart", _internal("/products/widget-pro")),
                ("/checkout", "Checkout", _internal("/cart")),
                ("/checkout/shipping", "Checkout: shipping", _internal("/checkout")),
                ("/checkout/payment", "Checkout: payment", _internal("/checkout/shipping")),
                ("/checkout/payment", "Checkout: payment", _internal("/checkout/payment")),
                ("/checkout/error", "Something went wrong", _internal("/checkout/payment")),
            ],
        ),
    ]
    sessions, views = _scripted_sessions(specs)
    # Outside every session window: shows "not in a session" in the timeline.
    views.append(
        _page_view("/order-status", _utc(2024, 1, 18, 8, 15), "Order status", "https://mail.google.com/")
    )
    return _record(sessions, views)


# --- generated visitors -------------------------------------------------------------

_ENTRY_PAGES: list[tuple[str, str | None]] = [
    ("/", "Homepage"),
    ("/products", "All products"),
    ("/sale", "Winter sale"),
    ("/blog/choosing-a-widget", "How to choose a widget"),
    ("/products/widget-pro", "Widget Pro"),
    ("/docs/getting-started", "Getting started"),
]
_PAGES: list[tuple[str, str | None]] = _ENTRY_PAGES + [
    ("/products/widget-mini", "Widget Mini"),
    ("/products/widget-pro/reviews", "Widget Pro reviews"),
    ("/products/widget-pro/specs", "Widget Pro specifications"),
    ("/pricing", "Pricing"),
    ("/cart", "Your cart"),
    ("/checkout", "Checkout"),
    ("/checkout/payment", "Checkout: payment"),
    ("/account", "Your account"),
    ("/account/orders", "Your orders"),
    ("/contact", "Contact us"),
    ("/docs/faq", "Frequently asked questions"),
    ("/search?q=widget+battery", "Search: widget battery"),
    ("/about", None),
]
_EXTERNAL_REFERRERS = [
    "https://google.com",
    "https://www.google.com/search?q=widget+pro",
    "https://www.bing.com/",
    "https://duckduckgo.com/",
    "https://t.co/x7Kq2mP9Za",
    "https://www.linkedin.com/",
    "https://news.example.net/best-widgets-2024",
    "https://mail.google.com/",
]

_Profile = tuple[str, str, str, str | None]  # device, browser, os, country


def _generate(
    *,
    seed: int,
    n_sessions: int,
    n_views: int,
    start: datetime,
    end: datetime,
    profile_for: Callable[[random.Random, int], _Profile],
    session_id_for: Callable[[random.Random, int], str],
) -> _Record:
    """A deterministic visitor: ``n_sessions`` non-overlapping sessions holding ``n_views`` views.

    The time span is cut into one slot per session so that windows never overlap, and every
    page view lies inside its own session's window.
    """
    rng = random.Random(seed)
    if n_sessions == 1:
        parts = [n_views]
    else:
        cuts = sorted(rng.sample(range(1, n_views), n_sessions - 1))
        parts = [b - a for a, b in zip([0, *cuts], [*cuts, n_views])]
    slot = (end - start) / n_sessions
    slot_s = slot.total_seconds()
    sessions: list[dict[str, Any]] = []
    views: list[dict[str, Any]] = []
    for k, count in enumerate(parts):
        gaps = [rng.uniform(10, 240) for _ in range(count - 1)]
        total = sum(gaps)
        if total > 0.8 * slot_s:  # keep the session inside its slot
            gaps = [g * 0.8 * slot_s / total for g in gaps]
            total = 0.8 * slot_s
        offset = rng.uniform(0, slot_s - total - 1)
        first = start + slot * k + timedelta(milliseconds=round(offset * 1000))
        times = [first]
        for gap in gaps:
            times.append(times[-1] + timedelta(milliseconds=round(gap * 1000)))
        device, browser, os, country = profile_for(rng, k)
        sessions.append(
            _session(session_id_for(rng, k), times[0], times[-1], count, device, browser, os, country)
        )
        previous: str | None = None
        for when in times:
            if previous is None:
                path, title = rng.choice(_ENTRY_PAGES)
                referrer = rng.choice(_EXTERNAL_REFERRERS) if rng.random() < 0.7 else None
            else:
                path, title = rng.choice(_PAGES)
                referrer = _internal(previous) if rng.random() < 0.9 else None
            if rng.random() < 0.05:
                title = None  # some pages have no <title>
            views.append(_page_view(path, when, title, referrer))
            previous = path
    return _record(sessions, views)


def _returning_visitor() -> _Record:
    """Six weeks, 12 sessions on three devices, several browsers/OSes/countries, one null country."""
    profiles: list[_Profile] = [
        ("desktop", "chrome", "windows", "DE"),
        ("mobile", "safari", "ios", "DE"),
        ("desktop", "chrome", "windows", "DE"),
        ("tablet", "safari", "ios", None),  # geo lookup failed for this session
        ("mobile", "samsung internet", "android", "AT"),
        ("desktop", "firefox", "linux", "DE"),
        ("desktop", "edge", "windows", "FR"),
        ("mobile", "chrome", "android", "FR"),
        ("tablet", "chrome", "android", "DE"),
        ("desktop", "safari", "macos", "GB"),
        ("mobile", "safari", "ios", "US"),
        ("desktop", "chrome", "windows", "DE"),
    ]
    return _generate(
        seed=20240205,
        n_sessions=len(profiles),
        n_views=57,
        start=_utc(2024, 2, 5, 8),
        end=_utc(2024, 3, 18, 20),
        profile_for=lambda rng, k: profiles[k],
        session_id_for=lambda rng, k: str(uuid.UUID(int=rng.getrandbits(128), version=4)),
    )


_BULK_PROFILES: list[_Profile] = [
    ("desktop", "chrome", "windows", "US"),
    ("desktop", "chrome", "windows", "US"),
    ("desktop", "chrome", "windows", "US"),
    ("mobile", "safari", "ios", "US"),
    ("mobile", "chrome", "android", "CA"),
    ("tablet", "safari", "ios", "US"),
    ("desktop", "firefox", "linux", "GB"),
    ("desktop", "edge", "windows", None),
]


def _bulk_visitor(seed: int, n_sessions: int, n_views: int, start: datetime, end: datetime) -> _Record:
    return _generate(
        seed=seed,
        n_sessions=n_sessions,
        n_views=n_views,
        start=start,
        end=end,
        profile_for=lambda rng, k: rng.choice(_BULK_PROFILES),
        session_id_for=lambda rng, k: f"sess_{k:05d}_{rng.getrandbits(32):08x}",
    )


# --- visitor_hostile ----------------------------------------------------------------

LONG_TITLE = ("An extremely long page title that never ends " * 200)[:5000]
LONG_PATH = "/" + ("very-long-path-segment/" * 200)[:2999]
CONTROL_CHARS = "".join(chr(c) for c in range(0x20)) + "\x7f"
BIDI_CHARS = "\u2066\u2067\u2068\u2069\u200f\u202a\u202b\u202c\u202d\u202e"

#: The strings the hostile visitor is guaranteed to contain (tests look for them).
HOSTILE_STRINGS: tuple[str, ...] = (
    "<script>alert(1)</script>",
    '"><img src=x onerror=alert(1)>',
    "javascript:alert(1)",
    "data:text/html;base64,PHNjcmlwdD5hbGVydCgxKTwvc2NyaXB0Pg==",
    "{{ 7*7 }}",
    "\u202e",
)


def _hostile_visitor() -> _Record:
    """Untrusted text everywhere a website's visitors can put it."""
    pages: list[_PageSpec] = [
        ("/search?q=<script>alert(1)</script>", "<script>alert(1)</script>", "https://google.com"),
        ('/"><img src=x onerror=alert(1)>', '"><img src=x onerror=alert(1)>', "javascript:alert(1)"),
        ("/promo", "Data referrer", "data:text/html;base64,PHNjcmlwdD5hbGVydCgxKTwvc2NyaXB0Pg=="),
        ("/promo", "Mixed-case scheme", "JaVaScRiPt:alert(document.cookie)"),
        ("/promo", "Scheme behind white space", " \tjavascript:alert(1)"),
        ("/promo", "vbscript", "vbscript:msgbox(1)"),
        ("/promo", "Protocol-relative referrer", "//evil.example/phish"),
        ("/promo", "Markup in referrer", 'https://evil.example/"><script>alert(1)</script>'),
        ("/long-title", LONG_TITLE, None),
        (LONG_PATH, "Very long path", None),
        ("/invoice", "Invoice \u202egpj.exe", None),  # renders as "Invoice exe.jpg"
        ("/bidi", "Isolates \u2066LRI\u2069 \u2067RLI\u2069 \u2068FSI\u2069 mark\u200f end", None),
        ("/bidi-unclosed", "Unclosed override \u202e never closed \u202b embed \u202a LRE \u202d LRO \u202c", "https://evil.example/\u202eexe.gpj"),
        ("/control\x00chars\n\t\r", "Control " + CONTROL_CHARS + " end", None),
        ("/{{7*7}}/{% debug %}", "{{ 7*7 }}", None),
        ("/template", "${7*7} #{7*7} <%= 7*7 %>", None),
        ("/rtl", "שלום עולם — مرحبا بالعالم", "https://ar.wikipedia.org/wiki/ويب"),
        ("/unicode", "Z\u0334a\u0337l\u0336g\u0338o\u0335 🚀 \u2028line\u2029paragraph", None),
        ("/%2e%2e/%2e%2e/etc/passwd", "Path traversal", None),
    ]
    base = _utc(2024, 3, 1, 9, 0)
    sessions, views = _scripted_sessions(
        [
            ("sess_hostile_1", base, base + timedelta(minutes=30), ("desktop", "chrome", "windows", "US"), pages),
            (
                # Odd session fields too: an unknown device, markup in the browser, no country.
                "sess_hostile_2",
                base + timedelta(days=1),
                base + timedelta(days=1, minutes=4),
                ("smart-tv", "<img src=x onerror=alert(1)>", "windows", None),
                [("/tv", "TV page", None), ("/tv/2", "TV page 2", None), ("/tv/3", "TV page 3", None)],
            ),
        ]
    )
    # Explicit nulls, empty strings and an unknown field: the API may send any of them.
    views.append(
        {"path": "/null-fields", "title": None, "timestamp": iso_ms(base + timedelta(days=1, minutes=1)), "referrer": None}
    )
    views.append(
        {"path": "/empty-fields", "title": "", "timestamp": iso_ms(base + timedelta(days=1, minutes=2)), "referrer": ""}
    )
    views.append(
        {
            "path": "/extra-field",
            "title": "Unknown extra field",
            "timestamp": iso_ms(base + timedelta(days=1, minutes=3)),
            "unexpected": {"nested": [1, 2, 3]},
        }
    )
    sessions[1]["pageViews"] += 3
    return _record(sessions, views)


# --- visitor_signals ----------------------------------------------------------------


def _signals_visitor() -> _Record:
    """One of each thing the "What stands out" panel names (see dashboard.signals)."""
    first, second = _utc(2024, 2, 10, 9, 0), _utc(2024, 2, 11, 19, 0)
    desktop: list[tuple[float, _PageSpec]] = [
        (0, ("/", "Homepage", "https://google.com")),
        (1, ("/products/widget-pro", "Widget Pro", _internal("/"))),
        (2, ("/products/old-widget", "Page not found", _internal("/products/widget-pro"))),  # a 404
        (3, ("/products/widget-pro", "Widget Pro", None)),
        (5, ("/pricing", "Pricing", _internal("/products/widget-pro"))),  # 16 minutes here: a long stay
        (21, ("/cart", "Your cart", _internal("/pricing"))),
        (22, ("/shipping", "Shipping and delivery", _internal("/cart"))),  # back and forth, five times
        (23, ("/cart", "Your cart", _internal("/shipping"))),
        (24, ("/shipping", "Shipping and delivery", _internal("/cart"))),
        (25, ("/cart", "Your cart", _internal("/shipping"))),
        (27, ("/account/login", "Sign in", _internal("/cart"))),
        (29, ("/account", "Your account", _internal("/account/login"))),
    ]
    mobile: list[tuple[float, _PageSpec]] = [
        (0, ("/cart", "Your cart", None)),
        (1, ("/checkout", "Checkout", _internal("/cart"))),
        (2, ("/checkout/payment", "Checkout: payment", _internal("/checkout"))),  # three tries in 5 min
        (3, ("/checkout/error", "Payment failed", _internal("/checkout/payment"))),
        (5, ("/checkout", "Checkout", _internal("/checkout/error"))),
        (6, ("/checkout/payment", "Checkout: payment", _internal("/checkout"))),
        (7, ("/checkout/payment", "Checkout: payment", _internal("/checkout/payment"))),
        (9, ("/contact", "Contact us", _internal("/checkout/payment"))),  # then they wrote in (19:10)
        (12, ("/contact/sent", "Message sent", _internal("/contact"))),
    ]
    sessions, views = [], []
    for session_id, start, environment, pages in (
        ("sess_signals_desktop", first, ("desktop", "chrome", "windows", "NL"), desktop),
        ("sess_signals_mobile", second, ("mobile", "safari", "ios", "NL"), mobile),
    ):
        sessions.append(
            _session(session_id, start, start + timedelta(minutes=pages[-1][0]), len(pages), *environment)
        )
        views.extend(_page_view(path, start + timedelta(minutes=minutes), title, referrer) for minutes, (path, title, referrer) in pages)
    return _record(sessions, views)


# --- visitor_live -------------------------------------------------------------------


def _live_visitor(now: datetime) -> _Record:
    """Relative to ``now``: two finished sessions and one in progress, last view 2.5 min ago."""
    now = now.replace(microsecond=now.microsecond // 1000 * 1000)
    profile = ("desktop", "chrome", "macos", "GB")
    return _record(
        *_scripted_sessions(
            [
                (
                    "sess_live_1",
                    now - timedelta(days=3, hours=2),
                    now - timedelta(days=3, hours=2) + timedelta(minutes=6),
                    ("mobile", "safari", "ios", "GB"),
                    [
                        ("/", "Homepage", "https://www.instagram.com/"),
                        ("/sale", "Winter sale", _internal("/")),
                        ("/products/widget-mini", "Widget Mini", _internal("/sale")),
                        ("/cart", "Your cart", _internal("/products/widget-mini")),
                    ],
                ),
                (
                    "sess_live_2",
                    now - timedelta(days=1, hours=5),
                    now - timedelta(days=1, hours=5) + timedelta(minutes=12),
                    profile,
                    [
                        ("/cart", "Your cart", None),
                        ("/checkout", "Checkout", _internal("/cart")),
                        ("/checkout/payment", "Checkout: payment", _internal("/checkout")),
                        ("/checkout/error", "Something went wrong", _internal("/checkout/payment")),
                        ("/contact", "Contact us", _internal("/checkout/error")),
                    ],
                ),
                (
                    "sess_live_3",
                    now - timedelta(minutes=17),
                    now - timedelta(minutes=2, seconds=30),
                    profile,
                    [
                        ("/", "Homepage", "https://google.com"),
                        ("/cart", "Your cart", _internal("/")),
                        ("/checkout", "Checkout", _internal("/cart")),
                        ("/checkout/payment", "Checkout: payment", _internal("/checkout")),
                        ("/checkout/payment", "Checkout: payment", _internal("/checkout/payment")),
                        ("/checkout/error", "Something went wrong", _internal("/checkout/payment")),
                        ("/help/payment-failed", "Payment failed? Help", _internal("/checkout/error")),
                    ],
                ),
            ]
        )
    )


# --- the registry -------------------------------------------------------------------


@lru_cache(maxsize=None)
def _fixed_record(visitor_id: str) -> _Record | None:
    """Data of the visitors that do not depend on the time; built once (huge takes ~0.2 s)."""
    if visitor_id == EXAMPLE_VISITOR_ID:
        return _example_visitor()
    if visitor_id == RETURNING_VISITOR_ID:
        return _returning_visitor()
    if visitor_id == LARGE_VISITOR_ID:
        return _bulk_visitor(1000, 100, 1000, _utc(2023, 1, 2, 6), _utc(2024, 6, 28, 22))
    if visitor_id == HUGE_VISITOR_ID:
        return _bulk_visitor(20000, *HUGE_TOTALS, _utc(2019, 1, 1, 6), _utc(2024, 6, 28, 22))
    if visitor_id == HOSTILE_VISITOR_ID:
        return _hostile_visitor()
    if visitor_id == SIGNALS_VISITOR_ID:
        return _signals_visitor()
    if visitor_id == ODD_VISITOR_ID:
        example = _example_visitor()
        return _Record(example.sessions[:2], tuple(v for v in example.page_views if v["timestamp"] >= "2024-01-19"))
    return None


def build_visitor_payload(
    visitor_id: str, now: datetime, *, limit: tuple[int, int] | None = None
) -> dict[str, Any] | None:
    """The documented ``data`` object for a known visitor, or None for an unknown one.

    ``now`` only matters for the live visitor. ``limit`` (sessions, page views) slices the
    newest-first arrays without touching the counts, which stay the full totals: deciding
    what to report is the API's job (see ``fake_api``). The result is a fresh dict each time.
    """
    record = _live_visitor(now) if visitor_id == LIVE_VISITOR_ID else _fixed_record(visitor_id)
    if record is None:
        return None
    sessions, views = record.sessions, record.page_views
    if limit is not None:
        sessions, views = sessions[: limit[0]], views[: limit[1]]
    first = min(s["firstVisitAt"] for s in record.sessions)
    last = max(max(s["lastSeenAt"] for s in record.sessions), record.page_views[0]["timestamp"])
    return {
        "visitorId": visitor_id,
        "sessionCount": len(record.sessions),
        "pageViewCount": len(record.page_views),
        "firstVisit": first,
        "lastVisit": last,
        "sessions": [dict(s) for s in sessions],
        "pageViews": [dict(v) for v in views],
    }
