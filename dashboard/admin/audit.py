"""The audit trail for admins: filter by agent, visitor and dates; page; export as CSV."""
from __future__ import annotations

from datetime import datetime, timezone

from flask import Response, current_app, request, stream_with_context, url_for
from flask_login import current_user
from sqlalchemy import select

from dashboard import audit
from dashboard.admin.blueprint import bp
from dashboard.extensions import db
from dashboard.models import Agent
from dashboard.postmetric.errors import PostMetricError
from dashboard.rendering import render_page

PAGE_SIZE = 50


def _error_titles(cls: type[PostMetricError]) -> dict[str, str]:
    titles = {cls.kind: cls.title} if "kind" in cls.__dict__ else {}
    for subclass in cls.__subclasses__():
        titles.update(_error_titles(subclass))
    return titles


# An outcome code of the audit trail -> (what the admin reads, the badge's tone). Failed
# look-ups are named by their error's own title, so a new error kind is labelled too.
OUTCOMES: dict[str, tuple[str, str]] = {
    **{kind: (title, "error") for kind, title in _error_titles(PostMetricError).items()},
    "rate_limited": ("PostMetric's request limit is reached", "warn"),
    "ok": ("Found", "ok"),
    "unknown": ("Not known to PostMetric", "neutral"),
    "stale": ("Saved copy shown (PostMetric failed)", "warn"),
    "no_site": ("No PostMetric site set up", "error"),
    "error": ("Failed", "error"),
}


def outcome_badge(code: str | None) -> tuple[str, str]:
    """The label and tone of an outcome code; an unknown code is shown as it is."""
    return OUTCOMES.get(code or "", (code or "none", "neutral"))
AUDIT_BLOCKS = {"main": "main", "audit-results": "audit_results"}


def current_filter() -> tuple[audit.AuditFilter, str | None]:
    """The filter in the query string (or none, with the sentence saying why)."""
    zone = getattr(current_user, "timezone", None) or "UTC"
    try:
        return audit.AuditFilter.from_args(request.args, zone), None
    except audit.InvalidFilter as problem:
        return audit.AuditFilter(zone=zone), str(problem)


@bp.get("/audit")
def show_audit():
    """Who looked at which visitor: newest first, a page at a time."""
    audit_filter, problem = current_filter()
    try:
        page = min(max(int(request.args.get("page", "1")), 1), 10**6)  # SQLite integers end
    except ValueError:
        page = 1
    total = audit.count_events(db.session, audit_filter)
    results = db.session.execute(audit.events_query(audit_filter).limit(PAGE_SIZE).offset((page - 1) * PAGE_SIZE))
    params = audit_filter.params()
    headers = {}
    if request.htmx and request.htmx.target == "audit-results":
        headers["HX-Push-Url"] = url_for("admin.show_audit", **params, **({"page": page} if page > 1 else {}))
    return render_page(
        "admin/audit.html",
        AUDIT_BLOCKS,
        status=400 if problem else 200,
        headers=headers,
        section="audit",
        rows=list(audit.audit_rows(results)),
        total=total,
        page=page,
        pages=max(1, -(-total // PAGE_SIZE)),
        filter=audit_filter,
        params=params,
        problem=problem,
        agents=db.session.scalars(select(Agent).order_by(Agent.email)).all(),
        retention_days=current_app.extensions["settings"].audit_retention_days,
        outcome_badge=outcome_badge,
    )


@bp.get("/audit.csv")
def export_audit():
    """Every event that matches the filter, as CSV (streamed, so a long trail fits)."""
    audit_filter, problem = current_filter()
    if problem:
        return Response(problem + "\n", status=400, mimetype="text/plain")
    query = audit.events_query(audit_filter).execution_options(yield_per=500)

    @stream_with_context
    def lines():
        # Closed even when the client stops reading: on PostgreSQL the result is a
        # server-side cursor, which would otherwise stay open until garbage collection.
        with db.session.execute(query) as result:
            yield from audit.csv_lines(audit.audit_rows(result))

    stamp = datetime.now(timezone.utc).strftime("%Y%m%d-%H%M%S")
    current_app.logger.info("admin %s exported the audit trail (%s)", current_user.id, audit_filter.params())
    return Response(
        lines(),
        mimetype="text/csv",
        headers={"Content-Disposition": f'attachment; filename="audit-{stamp}.csv"'},
    )
