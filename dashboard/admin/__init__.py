"""Admin pages: agents, PostMetric sites and the audit trail. Admins only.

Every route of this blueprint is behind ``require_admin``: an agent gets 403 on every
page and every POST, whatever route is added later.
"""
from flask import Blueprint, abort, redirect, url_for
from flask_login import current_user

bp = Blueprint("admin", __name__, url_prefix="/admin")


@bp.before_request
def require_admin():
    # The app-wide login check has already run: this request has an agent.
    if not current_user.is_authenticated or not current_user.is_admin:
        abort(403)


@bp.get("/")
def index():
    """The admin area opens on its list of agents."""
    return redirect(url_for("admin.list_agents"))


from dashboard.admin import agents, audit, sites  # noqa: E402,F401  (they add their routes to bp)

__all__ = ["bp"]
