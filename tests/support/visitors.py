"""Typed visitors built in a test, without the upstream client."""
from __future__ import annotations

from dashboard.postmetric.models import PageView, Session, Visitor


def visitor_of(sessions: list[Session], views: list[PageView], visitor_id: str = "visitor_123") -> Visitor:
    """A visitor with exactly these sessions and page views, first and last visit at the
    sessions' ends and counts that match the arrays."""
    return Visitor(
        visitor_id=visitor_id,
        session_count=len(sessions),
        page_view_count=len(views),
        first_visit=min(s.first_visit_at for s in sessions),
        last_visit=max(s.last_seen_at for s in sessions),
        sessions=sessions,
        page_views=views,
    )
