"""The visitor view: asking for the visitor, auditing it, and the context its templates get.

One place for the page, every fragment it swaps and the export, so that the timeline
an agent downloads is built exactly as the one on screen.
"""
from __future__ import annotations

import re
import threading
import weakref
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from typing import Callable, Sequence, TypeVar
from urllib.parse import urlencode

from cachetools import LRUCache
from markupsafe import Markup

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
    Referrers,
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


# Filtered timelines, pages of them, signals per contact moment and matches per text
# filter, kept per fetched visitor: the page and its fragments ask for the same few
# filters over and over.
TIMELINES_KEPT = 16
T = TypeVar("T")
_MISSING = object()


def _lru() -> LRUCache:
    return LRUCache(maxsize=TIMELINES_KEPT)


@dataclass
class VisitorFacts:
    """What the view derives from one fetched copy of a visitor whatever the filters:
    worked out once, since the cache hands every request the same object until it is
    fetched again (a new copy gets facts of its own). What depends on a filter or the
    contact moment is worked out when first asked for and kept beside it."""

    assignment: tuple[Session | None, ...]
    per_session: dict[str | None, int]
    sessions: tuple[Session, ...]  # newest first
    newest_view: datetime | None
    timelines: LRUCache = field(default_factory=_lru)
    pages: LRUCache = field(default_factory=_lru)
    found_signals: LRUCache = field(default_factory=_lru)
    matches: LRUCache = field(default_factory=_lru)
    derived: dict[str, object] = field(default_factory=dict)  # one value each, for the whole copy
    lock: threading.Lock = field(default_factory=threading.Lock)

    def _kept(self, store: LRUCache | dict, key: object, work: Callable[[], T]) -> T:
        """``store[key]``, worked out by ``work()`` the first time (two threads may both
        work it out: the results are equal, and the last one is kept)."""
        with self.lock:
            value = store.get(key, _MISSING)
        if value is _MISSING:
            value = work()
            with self.lock:
                store[key] = value
        return value

    def timeline(self, visitor: Visitor, state: ViewState) -> tuple[TimelineEntry, ...]:
        """The page views as the view's filters (session, text, order) leave them."""
        return self._kept(
            self.timelines,
            (state.session, state.q, state.order),
            lambda: tuple(
                build_entries(visitor.page_views, self.assignment, session_id=state.session, query=state.q, order=state.order)
            ),
        )

    def page(self, visitor: Visitor, state: ViewState, offset: int, size: int, marker: int | None) -> TimelinePage:
        """One page of that timeline (pages are read, never changed, so one serves all)."""
        return self._kept(
            self.pages,
            (state.session, state.q, state.order, offset, size, marker),
            lambda: page_of(self.timeline(visitor, state), offset, size, contact_index=marker),
        )

    def signals_at(self, visitor: Visitor, moment: datetime | None) -> tuple[list[signals.Signal], signals.Anchors]:
        """What stands out in the page views (some signals depend on the contact moment),
        and the rows' anchors."""
        return self._kept(self.found_signals, moment, lambda: signals.find_signals(visitor, self.assignment, moment))

    def session_matches(self, visitor: Visitor, state: ViewState, entries: Sequence[TimelineEntry]) -> dict[str | None, int] | None:
        """Views per session that the text filter keeps (None without one). Without a chosen
        session the timeline's entries are exactly those views: no second pass is needed."""
        if not state.q.strip():
            return None
        if state.session is None:
            return views_per_session([entry.session for entry in entries])
        return self._kept(self.matches, state.q, lambda: matches_per_session(visitor.page_views, self.assignment, state.q))

    def referrers(self, visitor: Visitor) -> Referrers:
        """The site's own hosts and every view's previous path, for the "Came from" column."""
        return self._kept(self.derived, "referrers", lambda: referrer_context(visitor.page_views, self.assignment))


def work_out_facts(visitor: Visitor) -> VisitorFacts:
    assignment = tuple(assign_page_views(visitor.sessions, visitor.page_views))
    return VisitorFacts(
        assignment=assignment,
        per_session=views_per_session(assignment),
        sessions=tuple(sorted(visitor.sessions, key=lambda s: s.first_visit_at, reverse=True)),
        newest_view=max((v.timestamp for v in visitor.page_views), default=None),
    )


class FactsCache:
    """Facts per fetched visitor, by identity: an entry lives exactly as long as its
    visitor object does (a weak reference drops it), so a re-fetched or evicted visitor
    can never be answered with another copy's facts."""

    def __init__(self) -> None:
        self._entries: dict[int, tuple[weakref.ref, VisitorFacts]] = {}
        self._lock = threading.Lock()

    def __len__(self) -> int:
        return len(self._entries)

    def facts(self, visitor: Visitor) -> VisitorFacts:
        key = id(visitor)
        with self._lock:
            entry = self._entries.get(key)
        if entry is not None and entry[0]() is visitor:
            return entry[1]
        facts = work_out_facts(visitor)

        def forget(_ref: weakref.ref, key: int = key) -> None:
            with self._lock:
                current = self._entries.get(key)
                if current is not None and current[0]() is None:
                    del self._entries[key]

        with self._lock:
            self._entries[key] = (weakref.ref(visitor, forget), facts)
        return facts


def facts_of(visitor: Visitor) -> VisitorFacts:
    cache = current_app.extensions.get("visitor_facts")
    if cache is None:
        cache = current_app.extensions.setdefault("visitor_facts", FactsCache())
    return cache.facts(visitor)


# Rendered timeline rows kept for the whole app, by size: a big visitor's first page of
# rows is about 30 KB, so this holds several hundred.
RENDERED_KEPT_BYTES = 16 * 1024 * 1024


class RenderedBlocks:
    """Rendered blocks of the visitor view, each kept for exactly the inputs it was
    rendered from: the fetched copy of the visitor (by identity, checked through a weak
    reference, so a re-fetched visitor is rendered afresh) and a key that names every
    other input the block reads. Only what the block's template produced is kept, so
    its escaping is the template's own."""

    def __init__(self, max_bytes: int = RENDERED_KEPT_BYTES) -> None:
        self._store: LRUCache = LRUCache(maxsize=max_bytes, getsizeof=lambda entry: len(entry[1]))
        self._lock = threading.Lock()

    def keeper(self, visitor: Visitor, key: tuple) -> Callable[..., Markup]:
        """What a template calls (``{% call kept("name") %}...{% endcall %}``) to render
        the block in its body once per (visitor copy, name, key)."""

        def kept(name: str, caller: Callable[[], str]) -> Markup:
            full_key = (id(visitor), name, *key)
            with self._lock:
                entry = self._store.get(full_key)
            if entry is not None and entry[0]() is visitor:
                return entry[1]
            html = Markup(caller())
            with self._lock:
                try:
                    self._store[full_key] = (weakref.ref(visitor), html)
                except ValueError:  # larger than the whole store: render it each time
                    pass
            return html

        return kept


def rendered_blocks() -> RenderedBlocks:
    blocks = current_app.extensions.get("rendered_visitor_blocks")
    if blocks is None:
        blocks = current_app.extensions.setdefault("rendered_visitor_blocks", RenderedBlocks())
    return blocks


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


def timeline_entries(visitor: Visitor, state: ViewState) -> Sequence[TimelineEntry]:
    """The visitor's page views as the view's filters (session, text, order) leave them."""
    return facts_of(visitor).timeline(visitor, state)


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


def visitor_context(result: Lookup, state: ViewState, now: datetime, page_size: int) -> dict[str, object]:
    """The context of a visitor that was found: summary, sessions, timeline page, share text."""
    visitor = result.visitor
    assert visitor is not None
    facts = facts_of(visitor)
    sessions = facts.sessions
    selected = next((s for s in sessions if s.session_id == state.session), None)
    # The newest few are listed at once (each row is a dozen macro calls: half a big
    # visitor's render time); "Show all" brings the rest in place, up to the cap.
    # (A page opened with sessions=all, the link's no-script fallback, lists them all.)
    shown = MAX_SESSIONS_LISTED if request.args.get("sessions") == "all" else SESSIONS_SHOWN_FIRST
    listed = list(sessions[:shown])
    # By identity: model equality compares every field, which made this a tenth of
    # a big page's time.
    if selected is not None and not any(s is selected for s in listed):
        listed.append(selected)
    listed_ids = {id(s) for s in listed}
    more = [s for s in sessions[:MAX_SESSIONS_LISTED] if id(s) not in listed_ids]
    entries = facts.timeline(visitor, state)
    moment = parse_moment(state.at)
    contact = contact_context(visitor.page_views, moment) if moment else None
    marker = contact_index(entries, moment, state.order) if moment else None
    page = facts.page(visitor, state, request_offset(), page_size, marker)
    newest_view = facts.newest_view
    last_seen = visitor.last_visit or newest_view
    active_now = last_seen is not None and now - last_seen <= ACTIVE_WINDOW
    since = parse_moment(request.args.get("since")) if state.live else None
    link = request.host_url.rstrip("/") + state.url()
    highlight = highlight_pattern(state.q)
    # Every input of the timeline rows (templates/visitors/visitor.html, timeline_rows)
    # but the fetched copy, whose identity keeps apart what is worked out from it (the
    # page's rows, the contact's last view, the referrers, the rows' anchors): the whole
    # view state (filters, contact moment, ticket and site: the Load more link carries
    # them all), where the page starts and how long it is, the contact moment the labels
    # count from, the text the rows mark, what counts as new in live mode, the zone times
    # are shown in, and the prefix links and icons are built under.
    rows_key = (state, page.offset, page_size, moment, highlight, since, agent_zone(), request.script_root)
    summary_text = share.ticket_summary(
        visitor, entries, zone=agent_zone(), link=link, contact=contact, filters=filter_description(state, selected)
    )
    return {
        **signals.view_context(facts.signals_at(visitor, moment), page),
        "seen_tickets": tickets.seen_before(db.session, result.site, state.visitor_id, state.ticket),
        "visitor": visitor,
        # With a text filter, the session list says how many views of each session match
        # (the filter swaps only the timeline; the list comes along out of band).
        "session_matches": facts.session_matches(visitor, state, entries),
        "sessions_out_of_band": wants_fragment() and request.htmx.target == "timeline",
        "highlight": highlight,
        "referrers": facts.referrers(visitor),
        "sessions": [SessionRow(s) for s in listed],
        "more_sessions": [SessionRow(s) for s in more],
        "session_choices": sessions[:MAX_SESSIONS_LISTED],
        "sessions_hidden": max(len(sessions) - MAX_SESSIONS_LISTED, 0),
        "selected_session": selected,
        "unknown_session": state.session is not None and selected is None,
        "outside_sessions": facts.per_session.get(None, 0),
        "page": page,
        "last_seen": last_seen,
        "active_now": active_now,
        "moment": moment,
        "moment_unreadable": bool(state.at) and moment is None,
        "contact": contact,
        "contact_sentence": share.contact_sentence(contact) if contact else "",
        "live": state.live and active_now,
        "since": since,
        "new_views": sum(1 for v in visitor.page_views if v.timestamp > since) if since else 0,
        "newest_view": newest_view,
        "share_link": link,
        "summary_text": summary_text,
        "kept": rendered_blocks().keeper(visitor, rows_key),
    }


def export_body(visitor: Visitor, state: ViewState, fmt: str, now: datetime) -> bytes:
    """The timeline as filtered on screen, as CSV or JSON (``fmt``)."""
    rows = share.export_rows(timeline_entries(visitor, state), agent_zone(), parse_moment(state.at))
    if fmt == "csv":
        return share.timeline_csv(rows)
    filters = {key: value for key, value in state.params().items() if key in EXPORT_FILTERS}
    return share.timeline_json(visitor, rows, filters=filters, exported_at=now, zone=agent_zone())

