"""Error pages: a clear sentence and a way forward, never a stack trace."""
from __future__ import annotations

import logging

from flask import Flask, g, render_template, request
from flask_wtf.csrf import CSRFError
from sqlalchemy.exc import InterfaceError, OperationalError, TimeoutError as PoolTimeout
from werkzeug.exceptions import HTTPException

from dashboard.audit import AuditNotRecorded
from dashboard.rendering import wants_fragment
from dashboard.requestlog import FailureLog, route_rule

# The database not answering: refused, dropped or timed-out connections, and a pool
# with no connection to give.
DATABASE_DOWN = (OperationalError, InterfaceError, PoolTimeout)
DATABASE_DOWN_MESSAGE = (
    "The dashboard's database is not answering",
    "Nothing was lost. The dashboard retries by itself; try again in a moment, and tell an admin if it lasts.",
)
AUDIT_MESSAGE = (
    "Not recorded",
    "This look-up could not be recorded, so it is not shown; try again in a moment.",
)

MESSAGES = {
    400: ("Bad request", "The request could not be understood. Go back and try again."),
    403: ("Not allowed", "Your account may not open this page. Ask an admin if you need it."),
    404: ("Page not found", "There is no page at this address. Check the link, or search for a visitor."),
    405: ("Not allowed", "This address does not accept that kind of request."),
    429: ("Too many requests", "Too many requests in a short time. Wait a moment and try again."),
    500: ("Something went wrong", "The dashboard hit an unexpected problem. It has been logged; try again, and tell an admin if it keeps happening."),
}


def render_error(status: int, title: str, message: str, *, fragment_status: int = 200):
    """The error page, or for htmx the message in the page's message area (answered
    with ``fragment_status``: the page's responseHandling swaps error statuses too)."""
    if wants_fragment():
        body = render_template("errors/message.html", title=title, message=message)
        return body, fragment_status, {"HX-Retarget": "#messages", "HX-Reswap": "innerHTML"}
    return render_template("errors/error.html", status=status, title=title, message=message), status


def render_unavailable(title: str, message: str):
    """A 503 that needs no database: the page is drawn as for a signed-out visitor, since
    loading the agent is one of the things that fails."""
    from flask_login import AnonymousUserMixin

    if g.get("_login_user") is None:
        g._login_user = AnonymousUserMixin()
    body, status, *headers = render_error(503, title, message, fragment_status=503)
    return body, status, {**(headers[0] if headers else {}), "Retry-After": "5"}


def init_app(app: Flask) -> None:
    # One line per failure kind per interval, for this app.
    app.extensions["failure_log"] = failures = FailureLog(logging.getLogger("dashboard.errors"))

    @app.errorhandler(CSRFError)
    def csrf_error(error: CSRFError):
        return render_error(
            400,
            "The form expired",
            "This form was open too long or came from another page. Reload the page and try again.",
        )

    @app.errorhandler(HTTPException)
    def http_error(error: HTTPException):
        status = error.code or 500
        title, message = MESSAGES.get(status, (error.name, error.description or ""))
        return render_error(status, title, message)

    @app.errorhandler(AuditNotRecorded)
    def audit_not_recorded(error: AuditNotRecorded):
        failures.report("audit write failed", f"a {error.action} was not shown because its audit row could not be written ({error.cause})")
        return render_unavailable(*AUDIT_MESSAGE)

    for kind in DATABASE_DOWN:

        @app.errorhandler(kind)
        def database_down(error: Exception):
            failures.report("database not answering", f"{error.__class__.__name__}: {str(error).splitlines()[0][:300]}")
            return render_unavailable(*DATABASE_DOWN_MESSAGE)

    @app.errorhandler(Exception)
    def unexpected_error(error: Exception):
        # The route's rule, never the path: a path can hold a visitor ID or a set-password token.
        app.logger.exception("unhandled error on %s %s", request.method, route_rule() or "(no route)")
        title, message = MESSAGES[500]
        return render_error(500, title, message)
