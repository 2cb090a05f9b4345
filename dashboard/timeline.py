"""Pure functions from a visitor's page views to the timeline an agent reads.

Page views carry no session ID: each is assigned to the session whose
``[first_visit_at, last_seen_at]`` window holds its time stamp (both ends inclusive).
Where windows overlap, the session that started last wins (it is the innermost, most
specific one). A view in no window keeps ``session=None`` and is shown, never dropped.
"""
from __future__ import annotations

import re
from bisect import bisect_right
from collections import Counter
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from typing import NamedTuple, Sequence

from dashboard.formatting import format_duration, split_referrer
from dashboard.postmetric.models import PageView, Session

ORDERS = ("desc", "asc")


def assign_page_views(sessions: Sequence[Session], page_views: Sequence[PageView]) -> list[Session | None]:
    """The session of each page view, in the order of ``page_views`` (None: in no window)."""
    by_start = sorted(sessions, key=lambda s: s.first_visit_at)
    starts = [s.first_visit_at for s in by_start]
    # reach[i]: the latest end among the first i+1 sessions; once it is before a view's
    # time, no earlier-starting session can hold the view, so the scan stops.
    reach = []
    latest = None
    for session in by_start:
        latest = session.last_seen_at if latest is None or session.last_seen_at > latest else latest
        reach.append(latest)

    assigned: list[Session | None] = []
    for view in page_views:
        moment = view.timestamp
        index = bisect_right(starts, moment) - 1
        found = None
        while index >= 0 and reach[index] >= moment:
            if by_start[index].last_seen_at >= moment:
                found = by_start[index]
                break
            index -= 1
        assigned.append(found)
    return assigned


class TimelineEntry(NamedTuple):
    """A page view with its session. A tuple, not a frozen dataclass: a big visitor
    builds a thousand of these per request, and a tuple is built in C."""

    view: PageView
    session: Session | None

    @property
    def session_id(self) -> str | None:
        return self.session.session_id if self.session else None


@dataclass(frozen=True)
class TimelineRow:
    """One row of the timeline: a page view, or a run of consecutive views of one path."""

    entries: tuple[TimelineEntry, ...]
    starts_group: bool  # the first row of a run of views from one session (or from none)
    contact_before: bool = False  # the ticket-moment marker stands just before this row

    @property
    def entry(self) -> TimelineEntry:
        """The row's first view in display order (its time is the one shown)."""
        return self.entries[0]

    @property
    def count(self) -> int:
        return len(self.entries)

    @property
    def earliest(self) -> TimelineEntry:
        """The run's first view in time: the one whose referrer says where the visitor came from."""
        if len(self.entries) == 1:  # most rows: no need to compare
            return self.entries[0]
        return min(self.entries, key=lambda e: e.view.timestamp)


@dataclass(frozen=True)
class TimelinePage:
    rows: list[TimelineRow]
    total: int
    offset: int
    limit: int
    end: int  # index after the last entry on this page
    contact_after: bool = False  # the ticket-moment marker follows the last row

    @property
    def shown_until(self) -> int:
        return self.end

    @property
    def views_on_page(self) -> int:
        return self.end - self.offset

    @property
    def has_more(self) -> bool:
        return self.end < self.total

    @property
    def next_offset(self) -> int:
        return self.end


def normalise_order(order: str | None) -> str:
    return order if order in ORDERS else "desc"


def matches(view: PageView, needle: str) -> bool:
    """Case-insensitive text match on the path and the title."""
    return needle in view.path.casefold() or (view.title is not None and needle in view.title.casefold())


def build_entries(
    page_views: Sequence[PageView],
    assignment: Sequence[Session | None],
    *,
    session_id: str | None = None,
    query: str = "",
    order: str = "desc",
) -> list[TimelineEntry]:
    """The filtered timeline in the requested order (ties keep the upstream order)."""
    needle = query.strip().casefold()
    entries = [
        TimelineEntry(view, session)
        for view, session in zip(page_views, assignment)
        if (session_id is None or (session is not None and session.session_id == session_id))
        and (not needle or matches(view, needle))
    ]
    entries.sort(key=lambda e: e.view.timestamp, reverse=normalise_order(order) == "desc")
    return entries


def same_run(a: TimelineEntry, b: TimelineEntry) -> bool:
    """Two views collapse into one row: the same path in the same session (or both in none)."""
    return a.view.path == b.view.path and a.session_id == b.session_id


def page_of(
    entries: Sequence[TimelineEntry],
    offset: int,
    limit: int,
    *,
    contact_index: int | None = None,
    collapse: bool = True,
) -> TimelinePage:
    """The rows from ``offset`` on, holding about ``limit`` views, each marked where a new
    session run starts.

    With ``collapse``, consecutive views of one path in one session share a row. A run
    never crosses the ticket-moment marker (``contact_index``: the marker stands before
    that entry) and holds at most ``limit`` views; the page ends after the run that
    reaches ``limit`` views, so a page holds fewer than ``2 * limit`` views and a run is
    never split between two pages unless it is longer than ``limit``.
    """
    limit = max(limit, 1)
    offset = min(max(offset, 0), len(entries))
    rows: list[TimelineRow] = []
    previous = entries[offset - 1] if offset > 0 else None
    index = offset
    while index < len(entries) and index - offset < limit:
        stop = index + 1
        if collapse:
            while (
                stop < len(entries)
                and stop - index < limit
                and stop != contact_index
                and same_run(entries[index], entries[stop])
            ):
                stop += 1
        run = tuple(entries[index:stop])
        starts = previous is None or previous.session_id != run[0].session_id
        rows.append(TimelineRow(run, starts, contact_before=index == contact_index))
        previous = run[-1]
        index = stop
    contact_after = contact_index is not None and contact_index == len(entries) == index
    return TimelinePage(rows=rows, total=len(entries), offset=offset, limit=limit, end=index, contact_after=contact_after)


def views_per_session(assignment: Sequence[Session | None]) -> dict[str | None, int]:
    """How many of the returned page views fell into each session (None: into none)."""
    counts: dict[str | None, int] = {}
    for session in assignment:
        key = session.session_id if session else None
        counts[key] = counts.get(key, 0) + 1
    return counts


def matches_per_session(
    page_views: Sequence[PageView], assignment: Sequence[Session | None], query: str
) -> dict[str | None, int]:
    """How many page views of each session (None: of none) the text filter ``query``
    keeps, whatever session is chosen: the session list shows it beside every session."""
    needle = query.strip().casefold()
    return views_per_session([session for view, session in zip(page_views, assignment) if matches(view, needle)])


@dataclass(frozen=True)
class Referrers:
    """What the "Came from" column needs to say more than a URL.

    ``own_hosts``: the host of the visitor's own site, learnt as the host that most
    often names the page viewed just before in the same session (PostMetric does not say
    which site it tracks; one stray referrer cannot pass for the site). ``previous``: for each page view (by identity: a request's views live as
    long as it does, and comparing models field by field is slow), the path of the page
    viewed before it in its session.
    """

    own_hosts: frozenset[str]
    previous: dict[int, str]

    def previous_path(self, view: PageView) -> str | None:
        return self.previous.get(id(view))


def referrer_context(page_views: Sequence[PageView], assignment: Sequence[Session | None]) -> Referrers:
    """The site's own hosts and every view's previous path (see :class:`Referrers`)."""
    last_in_session: dict[str | None, PageView] = {}
    previous: dict[int, str] = {}
    own_hosts: Counter[str] = Counter()
    pairs = list(zip(page_views, assignment))
    # PostMetric sends newest first: walking that backwards needs no sort (a big visitor
    # has 20,000 views, and this runs on every request).
    if all(a[0].timestamp >= b[0].timestamp for a, b in zip(pairs, pairs[1:])):
        pairs.reverse()
    else:
        pairs.sort(key=lambda pair: pair[0].timestamp)
    for view, session in pairs:
        key = session.session_id if session else None
        before = last_in_session.get(key)
        if before is not None:
            path = before.path
            previous[id(view)] = path
            referrer = view.referrer
            # The cheap test first: only a referrer ending in the previous path can name it.
            if referrer and path and referrer.endswith(path) and split_referrer(referrer)[1] == path:
                own_hosts[split_referrer(referrer)[0]] += 1
        last_in_session[key] = view
    return Referrers(frozenset(host for host, _ in own_hosts.most_common(1)), previous)


# --- the ticket moment ----------------------------------------------------------------

# "2024-01-20T14:00:00 01:00": a "+" in a query string that nobody encoded arrives as a space.
_SPACE_FOR_PLUS = re.compile(r"^(.*\d[T ]\d{2}:\d{2}(?::\d{2}(?:[.,]\d+)?)?) (\d{2}(?::?\d{2})?)$")
NEAR_CONTACT = timedelta(minutes=30)


def parse_moment(text: str | None) -> datetime | None:
    """An ISO 8601 moment as an aware UTC datetime, or None when it cannot be read.

    Accepts ``Z`` and numeric offsets, fractional seconds, a space instead of ``T``,
    an offset whose ``+`` became a space in a URL, a date alone (midnight UTC), and Unix
    time in seconds or milliseconds (some ticket systems give that). A moment without an
    offset is taken as UTC, so a shared link means the same instant in every time zone.
    """
    raw = (text or "").strip()
    if not raw or len(raw) > 64:
        return None
    if raw.isdigit() and 9 <= len(raw) <= 13:
        seconds = int(raw) / (1000 if len(raw) == 13 else 1)
        try:
            return datetime.fromtimestamp(seconds, tz=timezone.utc)
        except (OverflowError, OSError, ValueError):
            return None
    spaced = _SPACE_FOR_PLUS.match(raw)
    if spaced:
        raw = f"{spaced.group(1)}+{spaced.group(2)}"
    raw = raw.replace(",", ".")
    if raw[-1:] in "zZ":
        raw = raw[:-1] + "+00:00"
    try:
        moment = datetime.fromisoformat(raw)
        moment = moment.replace(tzinfo=timezone.utc) if moment.tzinfo is None else moment.astimezone(timezone.utc)
    except (ValueError, OverflowError):
        return None
    # A ticket is from this era; the calendar's ends would overflow in other time zones.
    return moment if 1970 <= moment.year <= 2999 else None


def contact_index(entries: Sequence[TimelineEntry], moment: datetime, order: str = "desc") -> int:
    """Where the ticket-moment marker stands: before the entry at this index.

    A view at the very moment counts as before the contact (it is the page the visitor
    was on when they wrote). ``entries`` are in ``order`` (see build_entries).
    """
    if normalise_order(order) == "desc":
        return next((i for i, e in enumerate(entries) if e.view.timestamp <= moment), len(entries))
    return next((i for i, e in enumerate(entries) if e.view.timestamp > moment), len(entries))


def contact_label(moment: datetime, contact: datetime) -> str:
    """``12 min 30 s before contact``, ``3 min 0 s after contact``, ``at contact``."""
    delta = int((moment - contact).total_seconds())
    if delta == 0:
        return "at contact"
    return f"{format_duration(abs(delta))} {'after' if delta > 0 else 'before'} contact"


@dataclass(frozen=True)
class ContactContext:
    """Where the visitor was when they wrote in (the ticket's moment)."""

    moment: datetime
    last_before: PageView | None  # the last page view at or before the moment
    first_after: PageView | None
    views_after: int

    @property
    def gap(self) -> timedelta | None:
        return None if self.last_before is None else self.moment - self.last_before.timestamp

    @property
    def active_near(self) -> bool:
        """The visitor viewed a page within NEAR_CONTACT before writing in."""
        return self.gap is not None and self.gap <= NEAR_CONTACT

    @property
    def gap_text(self) -> str:
        return "" if self.gap is None else format_duration(int(self.gap.total_seconds()))


def contact_context(page_views: Sequence[PageView], moment: datetime) -> ContactContext:
    """The visitor's last view before ``moment``, the first after, and how many came after."""
    before = [v for v in page_views if v.timestamp <= moment]
    after = [v for v in page_views if v.timestamp > moment]
    return ContactContext(
        moment=moment,
        last_before=max(before, key=lambda v: v.timestamp, default=None),
        first_after=min(after, key=lambda v: v.timestamp, default=None),
        views_after=len(after),
    )
