"""The account page: where an agent chooses the time zone the dashboard shows times in."""
from __future__ import annotations

from datetime import datetime, timezone

from flask import Blueprint, flash, redirect, request, url_for
from flask_login import current_user

from dashboard.account.forms import AccountForm
from dashboard.extensions import db
from dashboard.rendering import render_page

bp = Blueprint("account", __name__)


@bp.route("/account", methods=["GET", "POST"])
def settings():
    """Show and change the agent's time zone."""
    form = AccountForm(data={"timezone": current_user.timezone or "UTC"} if request.method == "GET" else None)
    if form.validate_on_submit():
        current_user.timezone = form.timezone.data
        current_user.timezone_chosen = True
        db.session.commit()
        flash(f"Times are now shown in {form.timezone.data.replace('_', ' ')}.")
        return redirect(url_for("account.settings"))
    status = 400 if request.method == "POST" else 200
    return render_page(
        "account/settings.html",
        {},
        status=status,
        form=form,
        now=datetime.now(timezone.utc),
    )
