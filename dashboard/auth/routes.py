"""Login, logout and the rules that send a logged-out request to /login and back."""
from __future__ import annotations

import math
import time
from urllib.parse import urlsplit

from flask import Blueprint, Flask, Response, current_app, flash, redirect, request, session, url_for
from flask_limiter import RateLimitExceeded
from flask_limiter.util import get_remote_address
from flask_login import current_user, login_required, login_user, logout_user
from sqlalchemy import select

from dashboard.auth.forms import ChangePasswordForm, LoginForm, SetPasswordForm
from dashboard.extensions import db, limiter, login_manager
from dashboard.models import Agent
from dashboard.password_links import LinkProblem, agent_for_token
from dashboard.passwords import MIN_PASSWORD_LENGTH
from dashboard.rendering import htmx_redirect, render_page
from dashboard.zones import is_zone

bp = Blueprint("auth", __name__)

# Endpoints that a logged-out visitor may reach.
PUBLIC_ENDPOINTS = {"auth.login", "auth.set_password", "static", "healthz"}


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


def login_failed(response: Response) -> bool:
    """Only failed attempts count against the limits (a wrong password answers 400)."""
    return response.status_code == 400


def seconds_until(reset_at: float) -> int:
    return max(1, math.ceil(reset_at - time.time()))


def init_app(app: Flask) -> None:
    login_manager.login_view = "auth.login"
    app.jinja_env.globals["min_password_length"] = MIN_PASSWORD_LENGTH

    @app.errorhandler(RateLimitExceeded)
    def too_many_attempts(error: RateLimitExceeded):
        """The login page again, saying how long to wait (the oldest failure's age-out)."""
        seconds = seconds_until(limiter.current_limit.window.reset_time) if limiter.current_limit else 900
        minutes = math.ceil(seconds / 60)
        form = LoginForm()
        form.next.data = form.next.data if is_safe_next(form.next.data) else ""
        message = f"Too many attempts. Try again in {minutes} minute{'' if minutes == 1 else 's'}."
        return render_page("auth/login.html", {}, form=form, error=message, status=429, headers={"Retry-After": str(seconds)})

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
        if current_user.is_authenticated and request.endpoint != "static":
            response.headers.setdefault("Cache-Control", "no-store")
        return response

    @app.before_request
    def require_login():
        if request.endpoint in PUBLIC_ENDPOINTS or request.endpoint is None:
            return None
        if not current_user.is_authenticated:
            return login_manager.unauthorized()
        # Loading the agent opened a transaction; end it so that no request holds a
        # pooled database connection while it waits on PostMetric (the agent stays
        # loaded: sessions do not expire objects on commit).
        db.session.commit()
        return None


def failed_login_limit(setting: str, key_func, scope: str):
    """A limit on failed login POSTs; its rate is read from the settings at each request."""
    return limiter.limit(
        lambda: getattr(current_app.extensions["settings"], setting),
        key_func=key_func,
        methods=["POST"],
        deduct_when=login_failed,
        scope=scope,
    )


@bp.route("/login", methods=["GET", "POST"])
# Failed attempts are counted per e-mail (a password guessed from many addresses) and
# per address (many accounts tried from one).
@failed_login_limit("login_limit_per_account", login_account_key, "login-account")
@failed_login_limit("login_limit_per_address", get_remote_address, "login-address")
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
        agent = db.session.scalars(select(Agent).where(Agent.email == Agent.normalise_email(form.email.data))).first()
        if agent is not None and agent.check_password(form.password.data) and agent.active:
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
