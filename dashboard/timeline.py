"""Pure functions from a visitor's page views to the timeline an agent reads.

Page views carry no session ID: each is assigned to the session whose
``[first_visit_at, last_seen_at]`` window holds its time stamp (both ends inclusive).
Where windows overlap, the session that started last wins (it is the innermost, most
specific one). A view in no window keeps ``session=None`` and is shown, never dropped.
"""
from __future__ import annotations

from bisect import bisect_right
from dataclasses import dataclass
from typing import Sequence

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


@dataclass(frozen=True)
class TimelineEntry:
    view: PageView
    session: Session | None

    @property
    def session_id(self) -> str | None:
        return self.session.session_id if self.session else None


@dataclass(frozen=True)
class TimelineRow:
    entry: TimelineEntry
    starts_group: bool  # the first row of a run of views from one session (or from none)


@dataclass(frozen=True)
class TimelinePage:
    rows: list[TimelineRow]
    total: int
    offset: int
    limit: int

    @property
    def shown_until(self) -> int:
        return self.offset + len(self.rows)

    @property
    def has_more(self) -> bool:
        return self.shown_until < self.total

    @property
    def next_offset(self) -> int:
        return self.shown_until


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


def page_of(entries: Sequence[TimelineEntry], offset: int, limit: int) -> TimelinePage:
    """Rows ``offset`` to ``offset + limit``, each marked where a new session run starts."""
    offset = min(max(offset, 0), len(entries))
    chunk = entries[offset : offset + limit]
    rows = []
    previous = entries[offset - 1] if offset > 0 else None
    for entry in chunk:
        starts = previous is None or previous.session_id != entry.session_id
        rows.append(TimelineRow(entry, starts))
        previous = entry
    return TimelinePage(rows=rows, total=len(entries), offset=offset, limit=limit)


def views_per_session(assignment: Sequence[Session | None]) -> dict[str | None, int]:
    """How many of the returned page views fell into each session (None: into none)."""
    counts: dict[str | None, int] = {}
    for session in assignment:
        key = session.session_id if session else None
        counts[key] = counts.get(key, 0) + 1
    return counts
