"""The admin blueprint object and the rule that guards all of it.

Its own module so that the route modules can import ``bp`` without importing the
package that imports them (which would be a circle).
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
