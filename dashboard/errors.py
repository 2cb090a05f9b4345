"""Error pages: a clear sentence and a way forward, never a stack trace."""
from __future__ import annotations

from flask import Flask, render_template, request
from flask_wtf.csrf import CSRFError
from werkzeug.exceptions import HTTPException

from dashboard.rendering import wants_fragment

MESSAGES = {
    400: ("Bad request", "The request could not be understood. Go back and try again."),
    403: ("Not allowed", "Your account may not open this page. Ask an admin if you need it."),
    404: ("Page not found", "There is no page at this address. Check the link, or search for a visitor."),
    405: ("Not allowed", "This address does not accept that kind of request."),
    429: ("Too many requests", "Too many requests in a short time. Wait a moment and try again."),
    500: ("Something went wrong", "The dashboard hit an unexpected problem. It has been logged; try again, and tell an admin if it keeps happening."),
}


def render_error(status: int, title: str, message: str):
    if wants_fragment():
        # htmx does not swap error statuses: answer 200 and put the message in the
        # page's message area instead of the element that asked.
        body = render_template("errors/message.html", title=title, message=message)
        return body, 200, {"HX-Retarget": "#messages", "HX-Reswap": "innerHTML"}
    return render_template("errors/error.html", status=status, title=title, message=message), status


def init_app(app: Flask) -> None:
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

    @app.errorhandler(Exception)
    def unexpected_error(error: Exception):
        app.logger.exception("unhandled error on %s %s", request.method, request.path)
        title, message = MESSAGES[500]
        return render_error(500, title, message)
