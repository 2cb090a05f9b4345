"""Managing agents: add (with a set-password link), disable, re-enable, reset, change role."""
from __future__ import annotations

from flask import abort, current_app, flash, redirect, request, url_for
from flask_login import current_user
from sqlalchemy import func, select

from dashboard.admin.blueprint import bp
from dashboard.admin.forms import AddAgentForm
from dashboard.extensions import db
from dashboard.models import Agent
from dashboard.password_links import make_set_password_token
from dashboard.rendering import render_page

ROLES = {"admin": True, "agent": False}


def agent_or_404(agent_id: int) -> Agent:
    agent = db.session.get(Agent, agent_id)
    if agent is None:
        abort(404)
    return agent


def is_last_active_admin(agent: Agent) -> bool:
    """Whether taking ``agent``'s admin rights or access would leave no active admin."""
    if not (agent.is_admin and agent.active):
        return False
    others = db.session.scalar(
        select(func.count()).select_from(Agent).where(Agent.is_admin.is_(True), Agent.active.is_(True), Agent.id != agent.id)
    )
    return not others


def back_to_list():
    return redirect(url_for("admin.list_agents"), 303)


def saved(agent: Agent, done: str, message: str):
    """Commit an admin's change to ``agent``, log who did what, and go back to the list."""
    db.session.commit()
    current_app.logger.info("admin %s %s agent %s", current_user.id, done, agent.id)
    flash(message)
    return back_to_list()


def render_agents(form: AddAgentForm | None = None, status: int = 200):
    agents = db.session.scalars(select(Agent).order_by(Agent.email)).all()
    # The page offers no action that would be refused: the last active admin can be
    # neither disabled nor made an agent (and nobody is offered to disable themselves).
    active_admins = [agent.id for agent in agents if agent.is_admin and agent.active]
    last_admin_id = active_admins[0] if len(active_admins) == 1 else None
    return render_page(
        "admin/agents.html", {}, status=status, section="agents", agents=agents, form=form or AddAgentForm(), last_admin_id=last_admin_id
    )


def render_link(agent: Agent, *, new: bool):
    """The set-password link, shown once; never cached."""
    link = url_for("auth.set_password", token=make_set_password_token(agent), _external=True)
    hours = current_app.extensions["settings"].set_password_link_hours
    return render_page("admin/link.html", {}, section="agents", agent=agent, link=link, hours=hours, new=new)


@bp.get("/agents")
def list_agents():
    """Every agent with their role and status, and the form to add one."""
    return render_agents()


@bp.post("/agents")
def add_agent():
    """Create an agent who sets their own password through a one-time link."""
    form = AddAgentForm()
    if not form.validate_on_submit():
        return render_agents(form, status=400)
    email = Agent.normalise_email(form.email.data)
    if db.session.scalar(select(Agent.id).where(Agent.email == email)) is not None:
        form.email.errors.append("An agent with this e-mail address exists already.")
        return render_agents(form, status=400)
    agent = Agent(email=email, is_admin=form.is_admin.data, active=True)
    agent.set_unusable_password()
    db.session.add(agent)
    db.session.commit()
    current_app.logger.info("admin %s added agent %s (admin=%s)", current_user.id, agent.id, agent.is_admin)
    return render_link(agent, new=True)


@bp.post("/agents/<int:agent_id>/disable")
def disable_agent(agent_id: int):
    """Take away access; the agent's open sessions end on their next request, and a
    set-password link sent to them stops working (for good: re-enabling does not revive it)."""
    agent = agent_or_404(agent_id)
    if is_last_active_admin(agent):
        flash(f"{agent.email} is the last active admin and cannot be disabled. Make another agent an admin first.")
        return back_to_list()
    agent.active = False
    agent.end_sessions()
    return saved(agent, "disabled", f"{agent.email} is disabled and logged out everywhere.")


@bp.post("/agents/<int:agent_id>/enable")
def enable_agent(agent_id: int):
    """Give access back (with the password the agent had)."""
    agent = agent_or_404(agent_id)
    agent.active = True
    return saved(agent, "re-enabled", f"{agent.email} can log in again.")


@bp.post("/agents/<int:agent_id>/reset-password")
def reset_password(agent_id: int):
    """Void the agent's password and sessions; make a new set-password link."""
    agent = agent_or_404(agent_id)
    if not agent.active:
        flash(f"{agent.email} is disabled. Re-enable the agent before resetting the password.")
        return back_to_list()
    agent.set_unusable_password()  # ends their sessions and voids older links
    db.session.commit()
    current_app.logger.info("admin %s reset the password of agent %s", current_user.id, agent.id)
    return render_link(agent, new=False)


@bp.post("/agents/<int:agent_id>/role")
def change_role(agent_id: int):
    """Make the agent an admin, or an agent again."""
    agent = agent_or_404(agent_id)
    role = request.form.get("role", "")
    if role not in ROLES:
        abort(400)
    if not ROLES[role] and is_last_active_admin(agent):
        flash(f"{agent.email} is the last active admin and must stay one. Make another agent an admin first.")
        return back_to_list()
    agent.is_admin = ROLES[role]
    return saved(agent, f"gave the role {role} to", f"{agent.email} is now {'an admin' if agent.is_admin else 'an agent'}.")
