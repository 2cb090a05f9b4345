"""Login, logout and the rules that send a logged-out request to /login and back."""
from __future__ import annotations

from urllib.parse import urlsplit

from flask import Blueprint, Flask, flash, redirect, request, session, url_for
from flask_login import current_user, login_required, login_user, logout_user
from sqlalchemy import select

from dashboard.account.forms import is_zone
from dashboard.auth.forms import LoginForm
from dashboard.extensions import db, login_manager
from dashboard.models import Agent
from dashboard.rendering import htmx_redirect, render_page

bp = Blueprint("auth", __name__)

# Endpoints that a logged-out visitor may reach.
PUBLIC_ENDPOINTS = {"auth.login", "static", "healthz"}


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


def init_app(app: Flask) -> None:
    login_manager.login_view = "auth.login"

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
    """Log out. A POST, so CSRFProtect has already checked its token."""
    logout_user()
    session.clear()
    flash("You are logged out.")
    return redirect(url_for("auth.login"))
