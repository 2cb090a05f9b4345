"""Managing help-desk integrations: add, edit, rotate a secret, remove, and link agents
to their Zendesk users. Secrets are stored encrypted and shown by their last four
characters; every change is recorded in the audit trail (and fails closed with it)."""
from __future__ import annotations

from flask import abort, current_app, flash, redirect, request, url_for
from flask_login import current_user
from sqlalchemy import select

from dashboard import audit
from dashboard.admin.blueprint import bp
from dashboard.admin.integration_forms import IntegrationForm, RotateForm, ZendeskUserForm
from dashboard.encryption import KeyBox
from dashboard.extensions import db
from dashboard.integrations import KINDS
from dashboard.integrations.agents import zendesk_user_key
from dashboard.integrations.secrets import end_rotation, secret_unreadable, store_secret
from dashboard.models import Agent, Integration
from dashboard.rendering import render_page
from dashboard.sites import unique_slug


def key_box() -> KeyBox:
    return current_app.extensions["key_box"]


def integration_or_404(slug: str) -> Integration:
    integration = db.session.scalars(select(Integration).where(Integration.slug == slug)).first()
    if integration is None:
        abort(404)
    return integration


def integration_form(**kwargs) -> IntegrationForm:
    # Every site look-ups can ask: this instance's environment's and the admins' ones.
    sites = current_app.extensions["site_directory"].sites()
    return IntegrationForm(sites=[(site.slug, site.name) for site in sites], **kwargs)


def record(action: str, integration: Integration | None = None, *, helpdesk_agent: str | None = None) -> None:
    """The admin's change in the audit trail; raises AuditNotRecorded (the change is then
    not committed, and the admin sees the dashboard's "Not recorded" page)."""
    try:
        audit.record_event(
            db.engine,
            agent_id=current_user.id,
            site="",
            visitor_id="",
            action=action,
            outcome="ok",
            integration=integration.slug if integration is not None else None,
            helpdesk_agent=helpdesk_agent,
        )
    except Exception as error:
        db.session.rollback()
        raise audit.AuditNotRecorded(action, error) from error


def saved(action: str, integration: Integration, message: str, *, back_to_list: bool = False):
    """Record the admin's change, commit it, and go back to the integration (or the list)."""
    record(action, integration)
    db.session.commit()
    flash(message)
    if back_to_list:
        return redirect(url_for("admin.list_integrations"), 303)
    return redirect(url_for("admin.edit_integration", slug=integration.slug), 303)


def apply_form(integration: Integration, form: IntegrationForm) -> None:
    integration.name = form.name.data.strip()
    integration.account = (form.account.data or "").strip()
    integration.installation_id = (form.installation_id.data or "").strip() or None
    integration.site_slug = form.site_slug.data or None
    integration.visitor_field = (form.visitor_field.data or "").strip()
    integration.trust_all_agents = integration.kind == "zendesk" and bool(form.trust_all_agents.data)
    if form.public_key_pem.data:
        integration.public_key_pem = form.public_key_pem.data
    if form.secret.data:
        store_secret(integration, form.secret.data, key_box())


def render_integrations(form: IntegrationForm | None = None, *, status: int = 200):
    integrations = db.session.scalars(select(Integration).order_by(Integration.name)).all()
    agents = db.session.scalars(select(Agent).order_by(Agent.email)).all()
    return render_page(
        "admin/integrations.html",
        {},
        status=status,
        section="integrations",
        integrations=integrations,
        unreadable={i.id for i in integrations if secret_unreadable(i, key_box())},
        kinds=KINDS,
        agents=agents,
        form=form or integration_form(),
        user_form=ZendeskUserForm(),
        has_zendesk=any(i.kind == "zendesk" for i in integrations),
    )


@bp.get("/integrations")
def list_integrations():
    """The help desks that show the visitor card, and the add form."""
    return render_integrations()


@bp.post("/integrations")
def add_integration():
    """Add an integration; its secret is stored encrypted."""
    form = integration_form()
    if not (form.validate_on_submit() and form.needs(form.kind.data, adding=True)):
        return render_integrations(form, status=400)
    integration = Integration(slug=unique_slug(db.session, form.name.data, Integration.slug), kind=form.kind.data)
    apply_form(integration, form)
    db.session.add(integration)
    return saved("integration_add", integration, f"Integration {integration.name} is added. What to paste into the help desk is below.")


@bp.route("/integrations/<slug>", methods=["GET", "POST"])
def edit_integration(slug: str):
    """An integration's settings, its URLs to paste into the help desk, and its secret's rotation."""
    integration = integration_or_404(slug)
    form = integration_form(obj=integration) if request.method == "GET" else integration_form()
    form.kind.data = integration.kind
    if request.method == "GET":
        form.secret.data = ""
        form.site_slug.data = integration.site_slug or ""
    elif form.validate_on_submit() and form.needs(integration.kind, adding=False):
        apply_form(integration, form)
        return saved("integration_edit", integration, f"Integration {integration.name} is saved.")
    return render_edit(integration, form, status=400 if request.method == "POST" else 200)


def render_edit(integration: Integration, form: IntegrationForm, *, status: int = 200, rotate_form: RotateForm | None = None):
    return render_page(
        "admin/integration_edit.html",
        {},
        status=status,
        section="integrations",
        integration=integration,
        kinds=KINDS,
        form=form,
        rotate_form=rotate_form or RotateForm(),
        unreadable=secret_unreadable(integration, key_box()),
        urls=helpdesk_urls(integration),
    )


def helpdesk_urls(integration: Integration) -> dict[str, str]:
    """The addresses an admin pastes into the help desk."""
    root = request.host_url.rstrip("/")
    if integration.kind == "intercom":
        return {
            "Initialize URL": root + url_for("helpdesk.intercom_initialize", slug=integration.slug),
            "Submit URL": root + url_for("helpdesk.intercom_submit", slug=integration.slug),
        }
    if integration.kind == "json":
        example = url_for("helpdesk.json_card", slug=integration.slug)
        return {"Card URL": f"{root}{example}?visitorId={{visitor ID}}&at={{ticket created at}}&ticket={{ticket ID}}&agent={{agent e-mail}}"}
    return {"Sidebar URL": f"{root}/embed/zendesk/{integration.slug}"}


@bp.post("/integrations/<slug>/rotate")
def rotate_integration_secret(slug: str):
    """A new secret; the old one stays accepted until "End rotation"."""
    integration = integration_or_404(slug)
    rotate_form = RotateForm()
    valid = rotate_form.validate_on_submit()
    if integration.kind not in {"intercom", "json"}:
        rotate_form.secret.errors = ["A Zendesk integration has no secret: to change keys, paste the app's new public key under Settings."]
        valid = False
    if not valid:
        return render_edit(integration, integration_form(obj=integration), status=400, rotate_form=rotate_form)
    store_secret(integration, rotate_form.secret.data, key_box(), rotate=True)
    return saved(
        "integration_rotate", integration, f"The new secret of {integration.name} is stored; the previous one is still accepted until you end the rotation."
    )


@bp.post("/integrations/<slug>/end-rotation")
def end_integration_rotation(slug: str):
    """Stop accepting the previous secret."""
    integration = integration_or_404(slug)
    end_rotation(integration)
    return saved("integration_rot_end", integration, f"Only the current secret of {integration.name} is accepted now.")


@bp.post("/integrations/<slug>/delete")
def delete_integration(slug: str):
    """Remove an integration: its help desk's requests are refused from now on (its card
    views stay in the audit trail under its slug)."""
    integration = integration_or_404(slug)
    db.session.delete(integration)
    return saved("integration_remove", integration, f"Integration {integration.name} is removed.", back_to_list=True)


@bp.post("/agents/<int:agent_id>/zendesk-user")
def link_zendesk_user(agent_id: int):
    """Link an agent to their Zendesk user ID (empty: unlink): how the Zendesk sidebar knows them."""
    agent = db.session.get(Agent, agent_id) or abort(404)
    form = ZendeskUserForm()
    if not form.validate_on_submit():
        flash(" ".join(form.zendesk_user_id.errors) or "Enter a Zendesk user ID (a number).")
        return redirect(url_for("admin.list_integrations"), 303)
    account, _, number = (form.zendesk_user_id.data or "").strip().partition("/")
    user_id = zendesk_user_key(account, number) if number else None
    other = db.session.scalars(select(Agent).where(Agent.zendesk_user_id == user_id, Agent.id != agent.id)).first() if user_id else None
    if other is not None:
        flash(f"Zendesk user {user_id} is already linked to {other.email}; unlink it there first.")
        return redirect(url_for("admin.list_integrations"), 303)
    agent.zendesk_user_id = user_id
    # Who may see customer data in the sidebar changes: recorded before it takes effect.
    record("zendesk_user_link", helpdesk_agent=f"{agent.email} → {user_id or 'no Zendesk user'}")
    db.session.commit()
    flash(f"{agent.email} is {'linked to Zendesk user ' + user_id if user_id else 'no longer linked to a Zendesk user'}.")
    return redirect(url_for("admin.list_integrations"), 303)
