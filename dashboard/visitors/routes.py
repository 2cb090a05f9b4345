"""The search page and the visitor view (full page or the block htmx swaps)."""
from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta, timezone

from flask import Blueprint, current_app, redirect, request
from flask_login import current_user
from sqlalchemy import func, select

from dashboard import audit
from dashboard.extensions import db
from dashboard.lookup import Lookup, NoSiteConfigured, SiteSearch, UnknownSite, VisitorService
from dashboard.models import LookupEvent
from dashboard.rendering import render_page, wants_fragment
from dashboard.timeline import (
    TimelinePage,
    assign_page_views,
    build_entries,
    page_of,
    views_per_session,
)
from dashboard.visitors.state import PATH_SAFE_ID, InvalidVisitorId, ViewState, clean_visitor_id

bp = Blueprint("visitors", __name__)

ACTIVE_WINDOW = timedelta(minutes=30)
# htmx target id -> the block of visitors/visitor.html that replaces it.
VISITOR_BLOCKS = {
    "main": "main",
    "visitor-detail": "visitor_detail",
    "timeline": "timeline",
    "load-more": "timeline_rows",
}
HOME_BLOCKS = {"main": "main"}
PUSHED_TARGETS = {"main", "visitor-detail", "timeline"}


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
    return [(visitor_id, when) for visitor_id, when in rows]


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
    """The search page; ``/?visitorId=X`` goes straight to that visitor."""
    if "visitorId" not in request.args:
        return render_home()
    try:
        visitor_id = clean_visitor_id(request.args["visitorId"])
    except InvalidVisitorId as error:
        return render_home(error=str(error), search_value=request.args["visitorId"][:600], status=400)
    return redirect(ViewState.from_args(visitor_id, request.args).url())


@bp.get("/visitor")
def lookup():
    """The query form of the visitor view: works for every ID, also ones a path cannot hold."""
    raw = request.args.get("visitorId", "")
    try:
        visitor_id = clean_visitor_id(raw)
    except InvalidVisitorId as error:
        return render_home(error=str(error), search_value=raw[:600], status=400)
    state = ViewState.from_args(visitor_id, request.args)
    if not wants_fragment() and PATH_SAFE_ID.fullmatch(visitor_id):
        return redirect(state.url())
    return render_visitor_view(state)


@bp.get("/visitors/<visitor_id>")
def show(visitor_id: str):
    """The visitor view at its canonical address."""
    try:
        cleaned = clean_visitor_id(visitor_id)
    except InvalidVisitorId as error:
        return render_home(error=str(error), search_value=visitor_id[:600], status=400)
    state = ViewState.from_args(cleaned, request.args)
    if cleaned != visitor_id:
        return redirect(state.url())
    return render_visitor_view(state)


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


def find_visitor(state: ViewState, refresh: bool) -> tuple[ViewState, SiteSearch]:
    """The named site's answer, or every site's when the URL names none.

    Returns the state of the view to show: when the visitor was found by asking every
    site, it names the site that knows them, so that the URL does too.
    """
    if state.site:
        return state, SiteSearch((service().lookup(state.visitor_id, site_slug=state.site, refresh=refresh),))
    search = service().search(state.visitor_id, refresh=refresh)
    if len(search.lookups) > 1 and search.found:
        state = state.with_changes(site=search.shown.site.slug)
    return state, search


def render_visitor_view(state: ViewState):
    """Fetch (or reuse) the visitor and render the view or the block htmx asked for."""
    refresh = request.args.get("refresh") == "1"
    action = "refresh" if refresh else "lookup"
    settings = current_app.extensions["settings"]
    now = datetime.now(timezone.utc)
    target = request.htmx.target if wants_fragment() else None
    # Narrowing, paging and sorting re-use what the page already fetched.
    is_new_lookup = target in (None, "main")
    requested = state
    context: dict[str, object] = {
        "state": state,
        "now": now,
        "search_value": state.visitor_id,
        "setup_error": None,
        "result": None,
        "canonical_url": None,
    }
    status = 200
    try:
        state, search = find_visitor(state, refresh)
    except NoSiteConfigured:
        context["setup_error"] = (
            "No PostMetric site is configured. An admin must add one under Admin → Sites, or set "
            "POSTMETRIC_API_URL and POSTMETRIC_API_KEY on the server and restart it."
        )
        status = 503
        if is_new_lookup:
            record_lookup(state, None, "no_site", action)
    except UnknownSite:
        context["setup_error"] = (
            f"There is no PostMetric site called “{state.site}”. Open the view without the site "
            "parameter to ask every site."
        )
        status = 404
    else:
        result = search.shown
        context.update(
            state=state,
            result=result,
            searched_sites=len(search.lookups),
            others_found=search.others_found,
            failed_sites=[lookup for lookup in search.failed if lookup is not result],
        )
        if state != requested:
            context["canonical_url"] = state.url()
        if is_new_lookup:
            if result.knows_visitor or len(search.lookups) == 1:
                record_lookup(state, result, result.outcome, action)
            else:  # nobody knows the visitor: the row names every site that was asked
                asked = state.with_changes(site=",".join(lookup.site.slug for lookup in search.lookups))
                record_lookup(asked, None, result.outcome, action)
        if result.visitor is None:
            status = result.error.status_code if result.error else 502
        else:
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
    return render_page(
        "visitors/visitor.html", VISITOR_BLOCKS, status=status, headers=headers, target=target, **context
    )


def visitor_context(result: Lookup, state: ViewState, now: datetime, page_size: int) -> dict[str, object]:
    visitor = result.visitor
    assert visitor is not None
    assignment = assign_page_views(visitor.sessions, visitor.page_views)
    per_session = views_per_session(assignment)
    sessions = sorted(visitor.sessions, key=lambda s: s.first_visit_at, reverse=True)
    selected = next((s for s in sessions if s.session_id == state.session), None)
    entries = build_entries(
        visitor.page_views,
        assignment,
        session_id=state.session,
        query=state.q,
        order=state.order,
    )
    try:
        offset = max(int(request.args.get("offset", "0")), 0)
    except ValueError:
        offset = 0
    if not wants_fragment():
        offset = 0  # a page opened directly starts at the top
    page: TimelinePage = page_of(entries, offset, page_size)
    last_seen = visitor.last_visit or max((v.timestamp for v in visitor.page_views), default=None)
    return {
        "visitor": visitor,
        "sessions": [SessionRow(s, per_session.get(s.session_id, 0)) for s in sessions],
        "selected_session": selected,
        "unknown_session": state.session is not None and selected is None,
        "outside_sessions": per_session.get(None, 0),
        "page": page,
        "last_seen": last_seen,
        "active_now": last_seen is not None and now - last_seen <= ACTIVE_WINDOW,
    }
