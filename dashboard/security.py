"""Response hardening: security headers on every response, Secure cookies over https.

The Content-Security-Policy allows no inline script, no inline style and no eval: the
pages load htmx and app.js from /static, and htmx is configured in base.html not to
inject styles or evaluate code.
"""
from __future__ import annotations

import logging
import re
from collections.abc import Callable, Iterable

from flask import Flask, Response
from werkzeug.middleware.proxy_fix import ProxyFix

from dashboard.config import Settings


def content_security_policy(frame_ancestors: str) -> str:
    directives = {
        "default-src": "'self'",
        "script-src": "'self'",
        "style-src": "'self'",
        "img-src": "'self' data:",
        "connect-src": "'self'",
        "object-src": "'none'",
        "base-uri": "'none'",
        "form-action": "'self'",
        "frame-ancestors": frame_ancestors,
    }
    return "; ".join(f"{name} {value}" for name, value in directives.items())


def security_headers(settings: Settings) -> dict[str, str]:
    headers = {
        "Content-Security-Policy": content_security_policy(settings.frame_ancestors),
        # A click on a visitor's referrer link must not tell that site the dashboard's URL
        # (which holds visitor IDs and ticket references).
        "Referrer-Policy": "no-referrer",
        "X-Content-Type-Options": "nosniff",
        "Cross-Origin-Opener-Policy": "same-origin",
    }
    if settings.frame_ancestors == "'none'":
        headers["X-Frame-Options"] = "DENY"  # for browsers that predate frame-ancestors
    return headers


def allow_framing_by(response: Response, origin: str) -> Response:
    """Let one origin frame this response (a help desk's sidebar showing /embed), and no
    other: the Content-Security-Policy names only it, and no X-Frame-Options contradicts
    it (``add_security_headers`` leaves a response's own policy alone)."""
    response.headers["Content-Security-Policy"] = content_security_policy(origin)
    response.headers.pop("X-Frame-Options", None)
    return response


def secure_cookie(header_value: str) -> str:
    """The Set-Cookie value with the Secure attribute (added once)."""
    attributes = {part.strip().lower() for part in header_value.split(";")[1:]}
    return header_value if "secure" in attributes else f"{header_value}; Secure"


class SecureCookiesOverHttps:
    """WSGI middleware: every cookie set in answer to an https request is Secure.

    SESSION_COOKIE_SECURE covers a deployment that is always https; this covers one that
    is reached over https without it being set (directly, or through a proxy that gunicorn
    trusts to say so). It wraps the whole app because Flask sets the session cookie, and
    Flask-Login the remember cookie, after every after_request hook has run.
    """

    def __init__(self, wsgi_app: Callable) -> None:
        self.wsgi_app = wsgi_app

    def __call__(self, environ: dict, start_response: Callable) -> Iterable[bytes]:
        if environ.get("wsgi.url_scheme") != "https":
            return self.wsgi_app(environ, start_response)

        def start_secure(status: str, headers: list[tuple[str, str]], exc_info=None):
            headers = [(name, secure_cookie(value) if name.lower() == "set-cookie" else value) for name, value in headers]
            return start_response(status, headers, exc_info)

        return self.wsgi_app(environ, start_secure)


SET_PASSWORD_TOKEN = re.compile(r"(/set-password/)[^\s?\"]+")
REQUEST_LOGGERS = ("gunicorn.access", "werkzeug")


class RedactSetPasswordTokens(logging.Filter):
    """Keeps one-time set-password links out of request logs: the token in such a URL
    lets whoever reads the log choose a new agent's password."""

    def filter(self, record: logging.LogRecord) -> bool:
        message = record.getMessage()
        redacted = SET_PASSWORD_TOKEN.sub(r"\1[redacted]", message)
        if redacted != message:
            record.msg, record.args = redacted, ()
        return True


def redact_request_logs() -> None:
    for name in REQUEST_LOGGERS:
        logger = logging.getLogger(name)
        if not any(isinstance(f, RedactSetPasswordTokens) for f in logger.filters):
            logger.addFilter(RedactSetPasswordTokens())


def init_app(app: Flask, settings: Settings) -> None:
    redact_request_logs()
    headers = security_headers(settings)

    @app.after_request
    def add_security_headers(response: Response) -> Response:
        own_policy = response.headers.get("Content-Security-Policy", headers["Content-Security-Policy"])
        for name, value in headers.items():
            if name == "X-Frame-Options" and own_policy != headers["Content-Security-Policy"]:
                continue  # a response that set its own frame-ancestors (allow_framing_by)
            response.headers.setdefault(name, value)
        return response

    app.wsgi_app = SecureCookiesOverHttps(app.wsgi_app)
    if settings.trusted_proxies:
        # Behind N proxies, the client's address (for login throttling and the logs) and
        # the scheme (for Secure cookies) come from their X-Forwarded-* headers. Outermost,
        # so that everything inside sees the corrected environ.
        app.wsgi_app = ProxyFix(
            app.wsgi_app,
            x_for=settings.trusted_proxies,
            x_proto=settings.trusted_proxies,
            x_host=settings.trusted_proxies,
        )
