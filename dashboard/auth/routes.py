"""Login, logout and the rules that send a logged-out request to /login and back."""
from __future__ import annotations

import functools
import math
import secrets
import time
from urllib.parse import urlsplit

from flask import Blueprint, Flask, Response, current_app, flash, redirect, request, session, url_for
from flask_limiter.util import get_remote_address
from flask_login import current_user, login_required, login_user, logout_user
from limits import parse_many
from sqlalchemy import select
from werkzeug.security import check_password_hash

import dashboard.models

from dashboard.auth.forms import ChangePasswordForm, LoginForm, SetPasswordForm
from dashboard.extensions import db, limiter, login_manager
from dashboard.integrations import SIGNED_BY_CALLER
from dashboard.models import Agent
from dashboard.password_links import LinkProblem, agent_for_token
from dashboard.passwords import MIN_PASSWORD_LENGTH
from dashboard.rendering import htmx_redirect, render_page
from dashboard.zones import is_zone

bp = Blueprint("auth", __name__)

# Endpoints that a logged-out visitor may reach.
PUBLIC_ENDPOINTS = {"auth.login", "auth.set_password", "static", "healthz", "readyz", "metrics"}
# Endpoints whose answers hold no customer data whoever asks: no need to load the agent
# to decide on caching (a page's CSS, script and icons come with the session cookie;
# the probes answer for the instance and say no-store themselves where it matters).
NO_CUSTOMER_DATA = {"static", "healthz", "readyz"}


def is_safe_next(target: str | None) -> bool:
    """Only same-site relative paths: no scheme, no host, no backslash tricks."""
    if not target or not target.startswith("/") or target.startswith("//"):
        return False
    if "\\" in target or any(ord(c) < 0x20 or ord(c) == 0x7F for c in target):
        return False
    parts = urlsplit(target)
    return not parts.scheme and not parts.netloc


def next_for_request() -> str:
    """Where a logged-out request was going, as a relative path with its query string."""
    if request.htmx and request.htmx.current_url:
        # An htmx request asks for a fragment; come back to the page it came from.
        parts = urlsplit(request.htmx.current_url)
        if parts.netloc == request.host:
            target = parts.path + (f"?{parts.query}" if parts.query else "")
            if is_safe_next(target):
                return target
    target = request.full_path if request.query_string else request.path
    return target if is_safe_next(target) else url_for("visitors.home")


def login_account_key() -> str:
    """The e-mail a login attempt names, so that throttling follows the account."""
    return "account:" + Agent.normalise_email(request.form.get("email", ""))[:320]


# Attempts are counted per e-mail (a password guessed from many addresses) and per
# address (many accounts tried from one): (setting, key, scope).
LOGIN_LIMITS = (
    ("login_limit_per_account", login_account_key, "login-account"),
    ("login_limit_per_address", get_remote_address, "login-address"),
)


def seconds_until(reset_at: float) -> int:
    return max(1, math.ceil(reset_at - time.time()))


def count_login_attempt() -> int | None:
    """Count this attempt against every login limit before any password is checked.

    Each count is one atomic check-and-add in the limiter's storage (memory or Redis), so
    however many attempts arrive at once, no more than the limit are ever evaluated.
    Returns None to go on, or the seconds until a used-up limit lets an attempt in again.
    """
    settings = current_app.extensions["settings"]
    strategy = limiter.limiter
    for setting, key_func, scope in LOGIN_LIMITS:
        key = key_func()
        for item in parse_many(getattr(settings, setting)):
            if not strategy.hit(item, scope, key):
                return seconds_until(strategy.get_window_stats(item, scope, key).reset_time)
    return None


def forget_account_failures() -> None:
    """After a successful login its account's earlier attempts stop counting (the address's
    stay: an agent's own login must not reset the limit on trying other accounts)."""
    settings = current_app.extensions["settings"]
    for setting, key_func, scope in LOGIN_LIMITS[:1]:
        for item in parse_many(getattr(settings, setting)):
            limiter.limiter.clear(item, scope, key_func())


@functools.lru_cache(maxsize=4)
def dummy_password_hash(hasher) -> str:
    return hasher(secrets.token_urlsafe(16))


def password_matches(agent: Agent | None, password: str) -> bool:
    """Check the password; for an unknown e-mail, check it against a dummy hash made the same
    way, so that the answer takes as long whether or not the account exists."""
    if agent is None:
        check_password_hash(dummy_password_hash(dashboard.models.generate_password_hash), password)
        return False
    return agent.check_password(password)


def too_many_attempts(seconds: int) -> Response:
    """The login page again, saying how long to wait (the oldest counted attempt's age-out)."""
    minutes = math.ceil(seconds / 60)
    form = LoginForm()
    form.next.data = form.next.data if is_safe_next(form.next.data) else ""
    message = f"Too many attempts. Try again in {minutes} minute{'' if minutes == 1 else 's'}."
    return render_page("auth/login.html", {}, form=form, error=message, status=429, headers={"Retry-After": str(seconds)})


def init_app(app: Flask) -> None:
    login_manager.login_view = "auth.login"
    app.jinja_env.globals["min_password_length"] = MIN_PASSWORD_LENGTH

    @login_manager.user_loader
    def load_agent(identity: str) -> Agent | None:
        agent_id, _, token = identity.partition(":")
        if not agent_id.isdigit():
            return None
        agent = db.session.get(Agent, int(agent_id))
        if agent is None or not agent.active or agent.session_token != token:
            return None
        return agent

    @login_manager.unauthorized_handler
    def unauthorized():
        login_url = url_for("auth.login", next=next_for_request())
        if request.htmx:
            return htmx_redirect(login_url)
        return redirect(login_url)

    @app.after_request
    def keep_customer_data_out_of_caches(response: Response) -> Response:
        # Signed-in pages show customer data: no browser or proxy cache may keep them
        # (this covers downloads, set-password links and progress polls too).
        if request.endpoint not in NO_CUSTOMER_DATA and current_user.is_authenticated:
            response.headers.setdefault("Cache-Control", "no-store")
        return response

    @app.before_request
    def require_login():
        if request.endpoint in PUBLIC_ENDPOINTS or request.endpoint is None:
            return None
        if getattr(current_app.view_functions.get(request.endpoint), SIGNED_BY_CALLER, False):
            return None  # a help desk's request: the view checks its signature (dashboard.integrations)
        if not current_user.is_authenticated:
            return login_manager.unauthorized()
        # Loading the agent opened a transaction; end it so that no request holds a
        # pooled database connection while it waits on PostMetric (the agent stays
        # loaded: sessions do not expire objects on commit).
        db.session.commit()
        return None


@bp.route("/login", methods=["GET", "POST"])
def login():
    """Show the login form; log the agent in and send them where they were going."""
    form = LoginForm()
    if request.method == "GET":
        form.next.data = request.args.get("next", "")
    target = form.next.data if is_safe_next(form.next.data) else url_for("visitors.home")
    if current_user.is_authenticated and request.method == "GET":
        return redirect(target)
    error = None
    if form.validate_on_submit():
        wait = count_login_attempt()
        if wait is not None:
            return too_many_attempts(wait)
        agent = db.session.scalars(select(Agent).where(Agent.email == Agent.normalise_email(form.email.data))).first()
        if password_matches(agent, form.password.data) and agent.active:
            forget_account_failures()
            if not agent.timezone_chosen and is_zone(form.timezone.data):
                agent.timezone = form.timezone.data
                db.session.commit()
            session.clear()  # a fresh session identity at login: nothing carried over
            login_user(agent, remember=form.remember.data)
            return redirect(target)
        error = "Wrong e-mail or password."
    status = 400 if request.method == "POST" else 200
    return render_page("auth/login.html", {}, form=form, error=error, status=status)


@bp.post("/logout")
@login_required
def logout():
    """Log out everywhere. A POST, so CSRFProtect has already checked its token.

    Session cookies are signed, not stored: clearing this browser's copy would leave a
    copied cookie (or a 14-day remember cookie) working. Rotating the agent's session
    token voids every cookie issued so far, on every device.
    """
    current_user.end_sessions()
    db.session.commit()
    logout_user()
    session.clear()
    flash("You are logged out on every device.")
    return redirect(url_for("auth.login"))


@bp.route("/password", methods=["GET", "POST"])
def change_password():
    """The agent changes their own password; their other sessions end."""
    form = ChangePasswordForm()
    if form.validate_on_submit():
        agent = current_user._get_current_object()
        if not agent.check_password(form.current_password.data):
            form.current_password.errors.append("That is not your current password.")
        else:
            agent.set_password(form.password.data)  # a new session token: other sessions end
            db.session.commit()
            session.clear()
            login_user(agent)  # this browser stays logged in under the new token
            current_app.logger.info("agent %s changed their password", agent.id)
            flash("Your password is changed. Any other sessions of yours have been logged out.")
            return redirect(url_for("visitors.home"), 303)
    status = 400 if request.method == "POST" else 200
    return render_page("auth/password.html", {}, form=form, status=status, own=True)


@bp.route("/set-password/<token>", methods=["GET", "POST"])
def set_password(token: str):
    """Choose a password from a one-time link an admin made."""
    try:
        agent = agent_for_token(token)
    except LinkProblem as problem:
        return render_page("auth/password.html", {}, form=None, link_problem=str(problem), status=400, own=False)
    form = SetPasswordForm()
    if form.validate_on_submit():
        agent.set_password(form.password.data)  # voids this link
        db.session.commit()
        if current_user.is_authenticated:
            logout_user()
        session.clear()
        current_app.logger.info("agent %s set their password from a link", agent.id)
        flash("Your password is set. Log in with it.")
        return redirect(url_for("auth.login"), 303)
    status = 400 if request.method == "POST" else 200
    response = render_page("auth/password.html", {}, form=form, email=agent.email, status=status, own=False)
    response.headers["Cache-Control"] = "no-store"
    return response
