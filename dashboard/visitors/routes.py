"""The search page and the visitor view (full page or the block htmx swaps)."""
from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone

from flask import Blueprint, abort, current_app, flash, make_response, redirect, request
from flask_login import current_user
from sqlalchemy import func, select

from dashboard import audit, signals, tickets
from dashboard.extensions import db
from dashboard.formatting import shorten, visible_text
from dashboard.lookup import Lookup, NoSiteConfigured, SiteSearch, UnknownSite, VisitorService
from dashboard.models import LookupEvent
from dashboard.rendering import agent_zone, render_page, wants_fragment
from dashboard.timeline import (
    TimelinePage,
    assign_page_views,
    build_entries,
    contact_context,
    contact_index,
    page_of,
    parse_moment,
    views_per_session,
)
from dashboard.visitors import share
from dashboard.visitors.state import (
    PATH_SAFE_ID,
    InvalidVisitorId,
    ViewState,
    clean_visitor_id,
    visitor_id_from_search,
)

bp = Blueprint("visitors", __name__)

ACTIVE_WINDOW = timedelta(minutes=30)
# htmx target id -> the block of visitors/visitor.html that replaces it.
VISITOR_BLOCKS = {
    "main": "main",
    "visitor-detail": "visitor_detail",
    "timeline": "timeline",
    "load-more": "timeline_rows",
    "more-sessions": "more_sessions",
}
HOME_BLOCKS = {"main": "main"}
PUSHED_TARGETS = {"main", "visitor-detail", "timeline"}
# The sessions list and the session filter show at most this many (the newest): a
# deployment without PostMetric's caps can return thousands, and a page must stay small.
MAX_SESSIONS_LISTED = 100
SESSIONS_SHOWN_FIRST = 20
EXPORT_TYPES = {"csv": "text/csv; charset=utf-8", "json": "application/json"}


def service() -> VisitorService:
    return current_app.extensions["visitor_service"]


def recent_lookups(limit: int = 10) -> list[tuple[str, datetime]]:
    """The agent's latest distinct look-ups, newest first."""
    latest = func.max(LookupEvent.created_at)
    rows = db.session.execute(
        select(LookupEvent.visitor_id, latest)
        .where(LookupEvent.agent_id == current_user.id)
        .group_by(LookupEvent.visitor_id)
        .order_by(latest.desc())
        .limit(limit)
    ).all()
    # SQLite hands back naive datetimes; they were written in UTC.
    return [(visitor_id, when if when.tzinfo else when.replace(tzinfo=timezone.utc)) for visitor_id, when in rows]


def render_home(*, error: str | None = None, search_value: str = "", status: int = 200):
    return render_page(
        "visitors/home.html",
        HOME_BLOCKS,
        status=status,
        search_error=error,
        search_value=search_value,
        recent=recent_lookups(),
        now=datetime.now(timezone.utc),
    )


@bp.get("/")
def home():
    """The search page; ``/?visitorId=X`` goes straight to that visitor (forgiving search)."""
    if "visitorId" not in request.args:
        return render_home()
    try:
        visitor_id = visitor_id_from_search(request.args["visitorId"])
    except InvalidVisitorId as error:
        return render_home(error=str(error), search_value=request.args["visitorId"][:600], status=400)
    return redirect(ViewState.from_args(visitor_id, request.args).url())


@bp.get("/visitor")
def lookup():
    """The query form of the visitor view: works for every ID, also ones a path cannot hold.

    The search box sends ``search=1``: then the ID is taken out of whatever was pasted.
    Without it the ID is exact, so this address opens any ID, even one shaped like a URL.
    """
    raw = request.args.get("visitorId", "")
    read_id = visitor_id_from_search if request.args.get("search") == "1" else clean_visitor_id
    try:
        visitor_id = read_id(raw)
    except InvalidVisitorId as error:
        return render_home(error=str(error), search_value=raw[:600], status=400)
    state = ViewState.from_args(visitor_id, request.args)
    if not wants_fragment() and PATH_SAFE_ID.fullmatch(visitor_id):
        return redirect(state.url())
    return render_visitor_view(state)


@bp.get("/visitors/<visitor_id>")
@bp.get("/visitors/<path:visitor_id>")  # an ID holding "/" (sent as %2F by a ticket template)
def show(visitor_id: str):
    """The visitor view at its canonical address."""
    try:
        cleaned = clean_visitor_id(visitor_id)
    except InvalidVisitorId as error:
        return render_home(error=str(error), search_value=visitor_id[:600], status=400)
    state = ViewState.from_args(cleaned, request.args)
    if cleaned != visitor_id or (not wants_fragment() and not PATH_SAFE_ID.fullmatch(cleaned)):
        # Trimmed, or an ID a path cannot carry safely: its canonical URL is the query form.
        return redirect(state.url())
    return render_visitor_view(state)


@bp.get("/lookups/progress")
def progress():
    """What the agent's look-up in flight is doing (polled by the loading indicator)."""
    current = service().progress.for_watcher(current_user.id)
    return current_app.response_class(current.sentence() if current else "", mimetype="text/plain")


@dataclass(frozen=True)
class SessionRow:
    session: object
    views_here: int


def record_lookup(state: ViewState, result: Lookup | None, outcome: str, action: str) -> None:
    """One audit row per look-up; a failure to write never breaks the look-up itself."""
    try:
        audit.record_event(
            db.engine,
            agent_id=current_user.id,
            site=result.site.slug if result else (state.site or ""),
            visitor_id=state.visitor_id,
            action=action,
            outcome=outcome,
            ticket=state.ticket,
        )
    except Exception:  # the audit write must not take the page down with it
        current_app.logger.exception("could not record a look-up")


@dataclass(frozen=True)
class Fetched:
    """What asking for a visitor produced, or the sentence that says why nobody was asked.

    ``state`` is the view to show: when every site was asked and one knew the visitor,
    it names that site, so that the URL does too.
    """

    state: ViewState
    search: SiteSearch | None
    setup_error: str | None = None
    status: int = 200

    @property
    def result(self) -> Lookup | None:
        return self.search.shown if self.search else None


def fetch(state: ViewState, *, refresh: bool) -> Fetched:
    """The named site's answer, or every site's when the URL names none; never raises."""
    try:
        if state.site:
            lookup = service().lookup(state.visitor_id, site_slug=state.site, refresh=refresh, watcher=current_user.id)
            search = SiteSearch((lookup,))
        else:
            search = service().search(state.visitor_id, refresh=refresh, watcher=current_user.id)
            if len(search.lookups) > 1 and search.found:
                state = state.with_changes(site=search.shown.site.slug)
    except NoSiteConfigured:
        return Fetched(
            state,
            None,
            "No PostMetric site is configured. An admin must add one under Admin → Sites, or set "
            "POSTMETRIC_API_URL and POSTMETRIC_API_KEY on the server and restart it.",
            503,
        )
    except UnknownSite:
        return Fetched(
            state,
            None,
            f"There is no PostMetric site called “{shorten(visible_text(state.site), 80)}”. Open the view without the site "
            "parameter to ask every site.",
            404,
        )
    result = search.shown
    status = 200 if result.visitor is not None else (result.error.status_code if result.error else 502)
    return Fetched(state, search, None, status)


def record_fetch(fetched: Fetched, action: str) -> None:
    """Audit one look-up: the site that answered, or every site asked when none knew the visitor."""
    search, result = fetched.search, fetched.result
    if search is None:
        if fetched.status == 503:  # no site at all: still a look-up someone tried
            record_lookup(fetched.state, None, "no_site", action)
        return
    if result.knows_visitor or len(search.lookups) == 1:
        record_lookup(fetched.state, result, result.outcome, action)
    else:
        asked = fetched.state.with_changes(site=",".join(lookup.site.slug for lookup in search.lookups))
        record_lookup(asked, None, result.outcome, action)


# A fragment (narrowing, filtering, paging) of a visitor the agent opened within this
# window belongs to that look-up; anything else is a look-up of its own.
AUDIT_FRAGMENT_WINDOW = timedelta(minutes=60)


def asked_postmetric(fetched: Fetched) -> bool:
    """Whether this request reached PostMetric (a cache miss, a refresh, a live tick)."""
    return fetched.search is not None and any(not lookup.from_cache for lookup in fetched.search.lookups)


def looked_up_recently(state: ViewState, now: datetime) -> bool:
    """Whether the agent's audit trail already shows this visitor within the window.

    Without this, a request that only claims to be a fragment (any client can send
    HX-Target) would show a visitor, cached for another agent, with no audit row.
    """
    site = LookupEvent.site == state.site if state.site else True
    return (
        db.session.scalar(
            select(LookupEvent.id)
            .where(
                LookupEvent.agent_id == current_user.id,
                LookupEvent.visitor_id == state.visitor_id,
                LookupEvent.created_at >= now - AUDIT_FRAGMENT_WINDOW,
                site,
            )
            .limit(1)
        )
        is not None
    )


def render_visitor_view(state: ViewState):
    """Fetch (or reuse) the visitor and render the view or the block htmx asked for."""
    refresh = request.args.get("refresh") == "1"
    action = "refresh" if refresh else "lookup"
    settings = current_app.extensions["settings"]
    now = datetime.now(timezone.utc)
    target = request.htmx.target if wants_fragment() else None
    # Narrowing, paging and sorting re-use what the page already fetched.
    is_new_lookup = target in (None, "main")
    fetched = fetch(state, refresh=refresh)
    result = fetched.result
    search = fetched.search
    context: dict[str, object] = {
        "state": state,
        "now": now,
        "search_value": state.visitor_id,
        "setup_error": fetched.setup_error,
        "result": result,
        "live_interval_ms": int(settings.live_refresh_seconds * 1000),
        # The address bar should name the site that was found, and never keep refresh=1
        # (a reload would ask PostMetric again): app.js replaces it with this URL.
        "canonical_url": fetched.state.url() if fetched.state != state or refresh else None,
        "searched_sites": len(search.lookups) if search else 0,
        "others_found": search.others_found if search else [],
        "failed_sites": [lookup for lookup in search.failed if lookup is not result] if search else [],
    }
    if is_new_lookup or asked_postmetric(fetched) or not looked_up_recently(fetched.state, now):
        record_fetch(fetched, action)
    state = context["state"] = fetched.state
    if result is not None and result.visitor is not None:
        context.update(visitor_context(result, state, now, settings.timeline_page_size))

    headers = {}
    if target in VISITOR_BLOCKS and target != "main" and "visitor" not in context:
        # The data behind a narrowing or paging request is gone (or failed): replace
        # the whole view with its error state instead of a half-empty fragment.
        target = "main"
        headers.update({"HX-Retarget": "#main", "HX-Reswap": "innerHTML"})
    if target in PUSHED_TARGETS:
        # The address bar shows the canonical URL of the view now on screen (a refresh
        # replaces the history entry instead of adding one).
        headers["HX-Replace-Url" if refresh else "HX-Push-Url"] = state.url()
    if target == "load-more" and "page" in context:
        page = context["page"]
        headers["HX-Trigger"] = json.dumps(
            {"announce": f"{page.views_on_page:,} more page views loaded; {page.shown_until:,} of {page.total:,} shown."}
        )
    return render_page(
        "visitors/visitor.html", VISITOR_BLOCKS, status=fetched.status, headers=headers, target=target, **context
    )


def request_offset() -> int:
    """Where a "Load more" request continues; a page opened directly starts at the top."""
    if not wants_fragment():
        return 0
    try:
        return max(int(request.args.get("offset", "0")), 0)
    except ValueError:
        return 0


def filter_description(state: ViewState, selected) -> str:
    parts = []
    if state.q:
        parts.append(f"path or title contains “{state.q}”")
    if selected is not None:
        parts.append(f"session {selected.session_id}")
    if state.order == "asc":
        parts.append("oldest first")
    return ", ".join(parts)


def visitor_context(result: Lookup, state: ViewState, now: datetime, page_size: int) -> dict[str, object]:
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
    entries = build_entries(
        visitor.page_views,
        assignment,
        session_id=state.session,
        query=state.q,
        order=state.order,
    )
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
        "seen_tickets": tickets.seen_before(db.session, result.site.slug, state.visitor_id, state.ticket),
        "visitor": visitor,
        "sessions": [SessionRow(s, per_session.get(s.session_id, 0)) for s in listed],
        "more_sessions": [SessionRow(s, per_session.get(s.session_id, 0)) for s in more],
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


@bp.get("/visitor/export")
def export():
    """The timeline as it is filtered, as a CSV or JSON download naming the visitor and time."""
    fmt = request.args.get("format", "")
    if fmt not in EXPORT_TYPES:
        abort(404)
    try:
        visitor_id = clean_visitor_id(request.args.get("visitorId", ""))
    except InvalidVisitorId as error:
        return render_home(error=str(error), search_value=request.args.get("visitorId", "")[:600], status=400)
    state = ViewState.from_args(visitor_id, request.args).with_changes(live=False)
    fetched = fetch(state, refresh=False)
    result = fetched.result
    record_fetch(fetched, "export")
    state = fetched.state
    if result is None or result.visitor is None:
        flash("The export could not be made: the visitor's data is not available right now.")
        return redirect(state.url())
    visitor = result.visitor
    entries = build_entries(
        visitor.page_views,
        assign_page_views(visitor.sessions, visitor.page_views),
        session_id=state.session,
        query=state.q,
        order=state.order,
    )
    now = datetime.now(timezone.utc)
    rows = share.export_rows(entries, agent_zone(), parse_moment(state.at))
    if fmt == "csv":
        body = share.timeline_csv(rows)
    else:
        filters = {key: value for key, value in state.params().items() if key in {"session", "q", "order", "at", "ticket", "site"}}
        body = share.timeline_json(visitor, rows, filters=filters, exported_at=now, zone=agent_zone())
    response = make_response(body)
    response.headers["Content-Type"] = EXPORT_TYPES[fmt]
    response.headers["Content-Disposition"] = f'attachment; filename="{share.export_filename(visitor_id, now, fmt)}"'
    return response
