"""The visitor view: asking for the visitor, auditing it, and the context its templates get.

One place for the page, every fragment it swaps and the export, so that the timeline
an agent downloads is built exactly as the one on screen.
"""
from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from typing import Sequence
from urllib.parse import urlencode

from flask import current_app, request
from flask_login import current_user

from dashboard import audit, requestlog, signals, tickets
from dashboard.extensions import db
from dashboard.formatting import shorten, visible_text
from dashboard.lookup import Lookup, VisitorAnswer, VisitorService
from dashboard.postmetric.models import Session, Visitor
from dashboard.rendering import wants_fragment
from dashboard.timeline import (
    TimelineEntry,
    TimelinePage,
    assign_page_views,
    build_entries,
    contact_context,
    contact_index,
    matches_per_session,
    page_of,
    parse_moment,
    referrer_context,
    views_per_session,
)
from dashboard.visitors import share
from dashboard.visitors.state import ViewState
from dashboard.zones import agent_zone

ACTIVE_WINDOW = timedelta(minutes=30)
# The sessions list and the session filter show at most this many (the newest): a
# deployment without PostMetric's caps can return thousands, and a page must stay small.
MAX_SESSIONS_LISTED = 100
SESSIONS_SHOWN_FIRST = 20
EXPORT_FILTERS = ("session", "q", "order", "at", "ticket", "site")


@dataclass(frozen=True)
class SessionRow:
    session: Session


@dataclass(frozen=True)
class VisitorView:
    """What the visitor view renders: the state on screen (naming the site that was
    found), its HTTP status and the template context."""

    state: ViewState
    status: int
    context: dict[str, object]


def service() -> VisitorService:
    return current_app.extensions["visitor_service"]


def look_up(
    state: ViewState, *, refresh: bool, action: str, new_lookup: bool = True, now: datetime | None = None
) -> tuple[VisitorAnswer, ViewState]:
    """Ask for the visitor (the named site, or every site) and audit the request when it
    is a look-up of its own; the state returned names the site that was found. Raises
    ``audit.AuditNotRecorded`` (the visitor must not be shown) when the row is refused."""
    # Live-view ticks and exports are background work: agents' own look-ups come first.
    background = action == "export" or (refresh and state.live)
    answer = service().find(
        state.visitor_id,
        site=state.site,
        refresh=refresh,
        watcher=current_user.id,
        background=background,
        request_id=requestlog.current_request_id(),
    )
    for lookup in answer.search.lookups if answer.search else ():
        requestlog.note_upstream(lookup.upstream_calls, lookup.cache)
    if answer.site != state.site:
        state = state.with_changes(site=answer.site)
    now = now or datetime.now(timezone.utc)
    if audit.must_record(
        db.session, answer, agent_id=current_user.id, visitor_id=state.visitor_id, new_lookup=new_lookup, now=now
    ):
        audit.record_answer(
            db.engine, answer, agent_id=current_user.id, visitor_id=state.visitor_id, action=action, ticket=state.ticket
        )
    return answer, state


# The no-script way to a view that would paint first: the same URL with this parameter
# answers in one response, waiting for PostMetric (the loading page's <noscript> refresh).
WAIT_PARAMETER = "wait"
# The element of the loading page that asks for the view once the page is painted.
FILL_TRIGGER = "visitor-loading"


def paints_first(state: ViewState, *, refresh: bool) -> bool:
    """Whether to answer with the loading page first: a browser opening the view, whose
    data must come from PostMetric (a refresh, or nothing fresh in the cache).

    Only a browser's own navigation (``Sec-Fetch-Dest: document``) paints first; scripts,
    monitors and htmx requests (boosted links, history restores included) get the view in
    one response as before.
    """
    if request.htmx or request.headers.get("Sec-Fetch-Dest") != "document":
        return False
    if request.args.get(WAIT_PARAMETER) == "1":
        return False
    return refresh or not service().answers_at_once(state.visitor_id, site=state.site)


def is_fill() -> bool:
    """Whether this request is the loading page asking for its view."""
    return wants_fragment() and request.htmx.trigger == FILL_TRIGGER


def this_url(**changes: str | None) -> str:
    """This request's own URL with ``changes`` to its query (None drops a parameter)."""
    args = [(key, value) for key, value in request.args.items(multi=True) if key not in changes]
    args += [(key, value) for key, value in changes.items() if value is not None]
    query = urlencode(args)
    return f"{request.script_root}{request.path}" + (f"?{query}" if query else "")


def loading_context(state: ViewState) -> dict[str, object]:
    """The loading page: the frame, the visitor ID and where the view will come from."""
    return {
        "state": state,
        "search_value": state.visitor_id,
        "page_title": page_title(state),
        # A page opened directly starts at the top, as the one-response page does.
        "fill_url": this_url(offset=None, **{WAIT_PARAMETER: None}),
        "wait_url": this_url(offset=None, **{WAIT_PARAMETER: "1"}),
    }


def status_of(answer: VisitorAnswer) -> int:
    """The HTTP status of the view: the upstream failure's own, or why nobody was asked."""
    return answer.status


def visitor_view(state: ViewState, *, refresh: bool, new_lookup: bool) -> VisitorView:
    """Fetch (or reuse) the visitor, audit it, and build the view's whole context."""
    settings = current_app.extensions["settings"]
    now = datetime.now(timezone.utc)
    answer, shown = look_up(state, refresh=refresh, action="refresh" if refresh else "lookup", new_lookup=new_lookup, now=now)
    result, search = answer.result, answer.search
    context: dict[str, object] = {
        "state": shown,
        "page_title": page_title(shown),
        "now": now,
        "search_value": state.visitor_id,
        "setup_error": answer.not_asked.sentence if answer.not_asked else None,
        "result": result,
        "live_interval_ms": int(settings.live_refresh_seconds * 1000),
        # The address bar should name the site that was found, and never keep refresh=1
        # (a reload would ask PostMetric again): app.js replaces it with this URL.
        "canonical_url": shown.url() if shown != state or refresh else None,
        "searched_sites": len(search.lookups) if search else 0,
        "others_found": search.others_found if search else [],
        "failed_sites": [lookup for lookup in search.failed if lookup is not result] if search else [],
    }
    if result is not None and result.visitor is not None:
        context.update(visitor_context(result, shown, now, settings.timeline_page_size))
    return VisitorView(shown, status_of(answer), context)


def page_title(state: ViewState) -> str:
    """The tab's title: the visitor first (agents keep many tabs open), then the filter."""
    parts = [shorten(visible_text(state.visitor_id), 40)]
    if state.q.strip():
        parts.append(f"“{shorten(visible_text(state.q.strip()), 30)}”")
    if state.session:
        parts.append("one session")
    return " · ".join([*parts, "Visitor Lookup"])


def highlight_pattern(query: str) -> re.Pattern[str] | None:
    """What the rows mark for the text filter (case-insensitive, the text taken literally)."""
    needle = visible_text(query.strip())
    return re.compile(re.escape(needle), re.IGNORECASE) if needle else None


def timeline_entries(visitor: Visitor, state: ViewState, assignment: Sequence[Session | None] | None = None) -> list[TimelineEntry]:
    """The visitor's page views as the view's filters (session, text, order) leave them."""
    return build_entries(
        visitor.page_views,
        assignment if assignment is not None else assign_page_views(visitor.sessions, visitor.page_views),
        session_id=state.session,
        query=state.q,
        order=state.order,
    )


def request_offset() -> int:
    """Where a "Load more" request continues; a page opened directly starts at the top."""
    if not wants_fragment():
        return 0
    try:
        return max(int(request.args.get("offset", "0")), 0)
    except ValueError:
        return 0


def filter_description(state: ViewState, selected: Session | None) -> str:
    parts = []
    if state.q:
        parts.append(f"path or title contains “{state.q}”")
    if selected is not None:
        parts.append(f"session {selected.session_id}")
    if state.order == "asc":
        parts.append("oldest first")
    return ", ".join(parts)


def session_matches(
    visitor: Visitor, state: ViewState, assignment: Sequence[Session | None], entries: Sequence[TimelineEntry]
) -> dict[str | None, int] | None:
    """Views per session that the text filter keeps (None without one). Without a chosen
    session the timeline's entries are exactly those views: no second pass is needed."""
    if not state.q.strip():
        return None
    if state.session is None:
        return views_per_session([entry.session for entry in entries])
    return matches_per_session(visitor.page_views, assignment, state.q)


def visitor_context(result: Lookup, state: ViewState, now: datetime, page_size: int) -> dict[str, object]:
    """The context of a visitor that was found: summary, sessions, timeline page, share text."""
    visitor = result.visitor
    assert visitor is not None
    assignment = assign_page_views(visitor.sessions, visitor.page_views)
    per_session = views_per_session(assignment)
    sessions = sorted(visitor.sessions, key=lambda s: s.first_visit_at, reverse=True)
    selected = next((s for s in sessions if s.session_id == state.session), None)
    # The newest few are listed at once (each row is a dozen macro calls: half a big
    # visitor's render time); "Show all" brings the rest in place, up to the cap.
    # (A page opened with sessions=all, the link's no-script fallback, lists them all.)
    shown = MAX_SESSIONS_LISTED if request.args.get("sessions") == "all" else SESSIONS_SHOWN_FIRST
    listed = sessions[:shown]
    # By identity: model equality compares every field, which made this a tenth of
    # a big page's time.
    if selected is not None and not any(s is selected for s in listed):
        listed.append(selected)
    listed_ids = {id(s) for s in listed}
    more = [s for s in sessions[:MAX_SESSIONS_LISTED] if id(s) not in listed_ids]
    entries = timeline_entries(visitor, state, assignment)
    moment = parse_moment(state.at)
    contact = contact_context(visitor.page_views, moment) if moment else None
    marker = contact_index(entries, moment, state.order) if moment else None
    page: TimelinePage = page_of(entries, request_offset(), page_size, contact_index=marker)
    newest_view = max((v.timestamp for v in visitor.page_views), default=None)
    last_seen = visitor.last_visit or newest_view
    active_now = last_seen is not None and now - last_seen <= ACTIVE_WINDOW
    since = parse_moment(request.args.get("since")) if state.live else None
    link = request.host_url.rstrip("/") + state.url()
    summary_text = share.ticket_summary(
        visitor, entries, zone=agent_zone(), link=link, contact=contact, filters=filter_description(state, selected)
    )
    return {
        **signals.view_context(visitor, assignment, moment, page),
        "seen_tickets": tickets.seen_before(db.session, result.site, state.visitor_id, state.ticket),
        "visitor": visitor,
        # With a text filter, the session list says how many views of each session match
        # (the filter swaps only the timeline; the list comes along out of band).
        "session_matches": session_matches(visitor, state, assignment, entries),
        "sessions_out_of_band": wants_fragment() and request.htmx.target == "timeline",
        "highlight": highlight_pattern(state.q),
        "referrers": referrer_context(visitor.page_views, assignment),
        "sessions": [SessionRow(s) for s in listed],
        "more_sessions": [SessionRow(s) for s in more],
        "session_choices": sessions[:MAX_SESSIONS_LISTED],
        "sessions_hidden": max(len(sessions) - MAX_SESSIONS_LISTED, 0),
        "selected_session": selected,
        "unknown_session": state.session is not None and selected is None,
        "outside_sessions": per_session.get(None, 0),
        "page": page,
        "last_seen": last_seen,
        "active_now": active_now,
        "moment": moment,
        "moment_unreadable": bool(state.at) and moment is None,
        "contact": contact,
        "contact_sentence": share.contact_sentence(contact) if contact else "",
        "live": state.live and active_now,
        "since": since,
        "new_views": sum(1 for v in visitor.page_views if since and v.timestamp > since),
        "newest_view": newest_view,
        "share_link": link,
        "summary_text": summary_text,
    }


def export_body(visitor: Visitor, state: ViewState, fmt: str, now: datetime) -> bytes:
    """The timeline as filtered on screen, as CSV or JSON (``fmt``)."""
    rows = share.export_rows(timeline_entries(visitor, state), agent_zone(), parse_moment(state.at))
    if fmt == "csv":
        return share.timeline_csv(rows)
    filters = {key: value for key, value in state.params().items() if key in EXPORT_FILTERS}
    return share.timeline_json(visitor, rows, filters=filters, exported_at=now, zone=agent_zone())

