"""The search page and the visitor view (full page or the block htmx swaps)."""
from __future__ import annotations

import json
from datetime import datetime, timezone

from flask import Blueprint, abort, current_app, flash, make_response, redirect, request
from flask_login import current_user

from dashboard import audit
from dashboard.extensions import db
from dashboard.rendering import render_page, wants_fragment
from dashboard.visitors import share
from dashboard.visitors.state import (
    PATH_SAFE_ID,
    InvalidVisitorId,
    ViewState,
    clean_visitor_id,
    visitor_id_from_search,
)
from dashboard.visitors.view import (
    export_body,
    is_fill,
    loading_context,
    look_up,
    paints_first,
    service,
    visitor_view,
)

bp = Blueprint("visitors", __name__)

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
EXPORT_TYPES = {"csv": "text/csv; charset=utf-8", "json": "application/json"}


@bp.app_template_global()
def visitor_url(visitor_id: str, **params: object) -> str:
    """The view of ``visitor_id`` (the home page's recent look-ups link with it)."""
    return ViewState(visitor_id).url(**params)


def render_home(*, error: str | None = None, search_value: str = "", status: int = 200):
    return render_page(
        "visitors/home.html",
        HOME_BLOCKS,
        status=status,
        search_error=error,
        search_value=search_value,
        recent=audit.recent_lookups(db.session, current_user.id),
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


def render_visitor_view(state: ViewState):
    """Fetch (or reuse) the visitor and render the view or the block htmx asked for."""
    refresh = request.args.get("refresh") == "1"
    if paints_first(state, refresh=refresh):
        # PostMetric may take seconds: paint the frame, the ID and "Asking PostMetric…"
        # now; the page asks for its view (the main block) at once, and that request
        # looks the visitor up and audits it. A load-triggered htmx request rather than
        # a streamed page, because the view's answer keeps its real status (a 504 stays
        # a 504 for logs and monitors; a stream must send 200 before it knows), passes
        # through compression and proxies without being held back, and is the same
        # "main" block every in-place search already swaps.
        return render_page("visitors/loading.html", {}, **loading_context(state))
    target = request.htmx.target if wants_fragment() else None
    # Narrowing, paging and sorting re-use what the page already fetched.
    view = visitor_view(state, refresh=refresh, new_lookup=target in (None, "main"))
    context, state = view.context, view.state

    headers = {}
    if target in VISITOR_BLOCKS and target != "main" and "visitor" not in context:
        # The data behind a narrowing or paging request is gone (or failed): replace
        # the whole view with its error state instead of a half-empty fragment.
        target = "main"
        headers.update({"HX-Retarget": "#main", "HX-Reswap": "innerHTML"})
    if target in PUSHED_TARGETS:
        # The address bar shows the canonical URL of the view now on screen (a refresh
        # replaces the history entry instead of adding one).
        # So does the loading page's own request for its view: its URL is already there.
        headers["HX-Replace-Url" if refresh or is_fill() else "HX-Push-Url"] = state.url()
    if target == "load-more" and "page" in context:
        page = context["page"]
        headers["HX-Trigger"] = json.dumps(
            {"announce": f"{page.views_on_page:,} more page views loaded; {page.shown_until:,} of {page.total:,} shown."}
        )
    return render_page(
        "visitors/visitor.html", VISITOR_BLOCKS, status=view.status, headers=headers, target=target, **context
    )


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
    answer, state = look_up(ViewState.from_args(visitor_id, request.args).with_changes(live=False), refresh=False, action="export")
    result = answer.result
    if result is None or result.visitor is None:
        flash("The export could not be made: the visitor's data is not available right now.")
        return redirect(state.url())
    now = datetime.now(timezone.utc)
    response = make_response(export_body(result.visitor, state, fmt, now))
    response.headers["Content-Type"] = EXPORT_TYPES[fmt]
    response.headers["Content-Disposition"] = f'attachment; filename="{share.export_filename(visitor_id, now, fmt)}"'
    return response
