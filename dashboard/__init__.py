"""Visitor Lookup: look up one PostMetric visitor and see what they did.

``create_app()`` builds everything; nothing connects, reads files or starts threads at
import time.
"""
from __future__ import annotations

from datetime import timedelta

from flask import Flask
from flask_compress import Compress

from dashboard import static_files
from dashboard.config import PROJECT_ROOT, Settings

COMPRESSION_ALGORITHMS = ["br", "gzip"]
COMPRESSED_TYPES = [
    "text/html",
    "text/css",
    "text/plain",
    "text/csv",
    "text/javascript",
    "application/javascript",
    "application/json",
    "image/svg+xml",
]


def limiter_storage_uri(settings: Settings) -> str:
    """Where login throttling counts attempts: Redis when REDIS_URL is set (shared by every
    worker), else this process's memory."""
    return settings.redis_url or "memory://"


def create_app(settings: Settings | None = None, *, run_migrations: bool = True) -> Flask:
    """Build the app from ``settings`` (default: the environment, a .env file included)."""
    if settings is None:
        settings = Settings.from_env()

    app = Flask(
        __name__,
        template_folder=str(PROJECT_ROOT / "templates"),
        static_folder=str(PROJECT_ROOT / "static"),
        instance_path=str(settings.instance_path),
    )
    app.config.update(
        SECRET_KEY=settings.secret_key,
        TESTING=settings.testing,
        SESSION_COOKIE_HTTPONLY=True,
        SESSION_COOKIE_SAMESITE="Lax",
        SESSION_COOKIE_SECURE=settings.session_cookie_secure,
        REMEMBER_COOKIE_HTTPONLY=True,
        REMEMBER_COOKIE_SAMESITE="Lax",
        REMEMBER_COOKIE_SECURE=settings.session_cookie_secure,
        REMEMBER_COOKIE_DURATION=timedelta(days=14),
        WTF_CSRF_TIME_LIMIT=None,  # tied to the session instead; a long shift must not expire the form
        # Referrer-Policy: no-referrer means browsers send no Referer (and "Origin: null")
        # with a form POST, so Flask-WTF's https Referer check would refuse every form.
        # The session-bound token and SameSite=Lax cookies are the protection.
        WTF_CSRF_SSL_STRICT=False,
        # Compression (flask-compress): Brotli where the browser takes it, else gzip.
        # Levels chosen by measurement (README, "Delivery"): 0.2 ms of CPU for a typical
        # visitor page, 0.4 ms for a 1,000-view one.
        COMPRESS_ALGORITHM=COMPRESSION_ALGORITHMS,
        COMPRESS_BR_LEVEL=4,
        COMPRESS_LEVEL=6,
        COMPRESS_MIMETYPES=COMPRESSED_TYPES,
        RATELIMIT_STORAGE_URI=limiter_storage_uri(settings),
        RATELIMIT_HEADERS_ENABLED=False,
    )
    app.extensions["settings"] = settings
    # First, so that its after_request hook runs last: it compresses what every other
    # hook has finished (and adds Accept-Encoding to their Vary).
    Compress(app)
    static_files.init_app(app)
    from dashboard import metrics, probes, requestlog

    if not settings.testing:
        requestlog.configure_logging(settings.log_format)

    from dashboard.extensions import csrf, db, htmx, limiter, login_manager

    # A thread holds at most one connection: the pool never makes a thread wait.
    db.init_app(
        app,
        settings.database_url,
        pool_size=settings.database_pool_size,
        max_overflow=max(settings.server_threads - settings.database_pool_size, 0),
    )
    # First, so that every later hook, error page and log line has the request's ID.
    requestlog.init_app(
        app, settings, on_request=lambda response, seconds: metrics.request_done(requestlog.route_rule(), response.status_code, seconds)
    )
    if run_migrations:
        from dashboard.db import migrate

        migrate(app.extensions["db_engine"])
    csrf.init_app(app)
    htmx.init_app(app)
    login_manager.init_app(app)
    limiter.init_app(app)

    from dashboard import account, admin, audit, auth, embed, errors, helpdesk, rendering, security, visitors
    from dashboard.encryption import KeyBox
    from dashboard.lookup import VisitorService
    from dashboard.sites import SiteDirectory, rotate_site_keys, sites_from_settings

    key_box = KeyBox.from_settings(settings)
    rotate_site_keys(app.extensions["db_sessionmaker"], key_box)
    app.extensions["key_box"] = key_box
    # The environment's site is this instance's configuration, kept in memory only.
    app.extensions["site_directory"] = directory = SiteDirectory(
        app.extensions["db_sessionmaker"], key_box, configured=sites_from_settings(settings)
    )
    app.extensions["visitor_service"] = VisitorService(settings, sites=directory.sites)
    rendering.init_app(app)
    security.init_app(app, settings)
    auth.init_app(app)
    errors.init_app(app)
    probes.init_app(
        app,
        probes.Readiness(
            app.extensions["db_engine"],
            redis_url=settings.redis_url,
            timeout=settings.readiness_timeout,
            drain_flag=settings.drain_flag,
        ),
    )
    metrics.init_app(
        app, settings.metrics_token, lambda window: audit.agents_active(app.extensions["db_engine"], window)
    )
    app.register_blueprint(auth.bp)
    app.register_blueprint(visitors.bp)
    app.register_blueprint(account.bp)
    app.register_blueprint(admin.bp)
    app.register_blueprint(helpdesk.bp)
    app.register_blueprint(embed.bp)

    return app
