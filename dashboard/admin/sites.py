"""Managing PostMetric sites: add, edit (a key can be replaced, never read back), delete,
and test the connection with the stored key."""
from __future__ import annotations

from dataclasses import dataclass
from urllib.parse import urlsplit

from flask import abort, current_app, flash, redirect, request, url_for
from flask_login import current_user
from sqlalchemy import select

from dashboard.admin import bp
from dashboard.admin.forms import SiteForm
from dashboard.encryption import KeyBox, UnreadableSecret
from dashboard.extensions import db
from dashboard.models import Site
from dashboard.lookup import VisitorService
from dashboard.postmetric.errors import ConnectionFailed, DeadlineExceeded, PostMetricError, Unauthorized, UpstreamTimeout
from dashboard.rendering import render_page
from dashboard.sites import SiteDirectory, SiteRef, store_key, unique_slug

# The test button swaps only its own site's result (block "connection_result").
TEST_BLOCKS = {"connection-result": "connection_result"}


def key_box() -> KeyBox:
    return current_app.extensions["key_box"]


def sites_changed() -> None:
    """Look-ups in this process use the new list at once (other workers within seconds)."""
    directory: SiteDirectory = current_app.extensions["site_directory"]
    directory.invalidate()


def site_or_404(slug: str) -> Site:
    site = db.session.scalars(select(Site).where(Site.slug == slug)).first()
    if site is None:
        abort(404)
    return site


def readable(site: Site) -> bool:
    try:
        key_box().decrypt(site.api_key_encrypted)
    except UnreadableSecret:
        return False
    return True


def render_sites(form: SiteForm | None = None, *, status: int = 200, tested: dict | None = None):
    sites = db.session.scalars(select(Site).order_by(Site.from_environment.desc(), Site.name)).all()
    return render_page(
        "admin/sites.html",
        TEST_BLOCKS,
        status=status,
        section="sites",
        sites=sites,
        unreadable={site.id for site in sites if not readable(site)},
        form=form or SiteForm(),
        tested=tested or {},
    )


@bp.get("/sites")
def list_sites():
    """The configured sites (keys shown as their last four characters) and the add form."""
    return render_sites()


@bp.post("/sites")
def add_site():
    """Add a site; its key is stored encrypted."""
    form = SiteForm()
    if form.validate_on_submit() and not form.api_key.data:
        form.api_key.errors.append("Enter the site's API key.")
    if form.errors:
        return render_sites(form, status=400)
    site = Site(
        slug=unique_slug(db.session, form.name.data),
        name=form.name.data.strip(),
        base_url=form.base_url.data,
        ticket_url_template=form.ticket_url_template.data or None,
    )
    store_key(site, form.api_key.data, key_box())
    db.session.add(site)
    db.session.commit()
    sites_changed()
    current_app.logger.info("admin %s added site %s", current_user.id, site.slug)
    flash(f"Site {site.name} is added. Use “Test connection” to check its key.")
    return redirect(url_for("admin.list_sites"), 303)


def origin(url: str) -> tuple[str, str]:
    parts = urlsplit(url.strip())
    return parts.scheme.lower(), parts.netloc.lower()


def moved_without_key(old_base_url: str, form: SiteForm) -> bool:
    """The form sends the site to another scheme, host or port but keeps the stored key."""
    return origin(form.base_url.data) != origin(old_base_url) and not form.api_key.data


@bp.route("/sites/<slug>/edit", methods=["GET", "POST"])
def edit_site(slug: str):
    """Change a site's name, base URL or ticket URL template, or replace its key."""
    site = site_or_404(slug)
    form = SiteForm(obj=site) if request.method == "GET" else SiteForm()
    if request.method == "GET":
        form.api_key.data = ""
    elif form.validate_on_submit():
        if moved_without_key(site.base_url, form):
            # The key goes only where it was entered for: otherwise an admin could point
            # the site at a host of their own and have the dashboard send them the key.
            form.api_key.errors.append(
                "The base URL points at another host: enter the site's API key again. A stored "
                "key is only ever sent to the address it was entered for."
            )
        else:
            site.name = form.name.data.strip()
            site.base_url = form.base_url.data
            site.ticket_url_template = form.ticket_url_template.data or None
            if form.api_key.data:
                store_key(site, form.api_key.data, key_box())
            db.session.commit()
            sites_changed()
            current_app.logger.info("admin %s edited site %s (key replaced: %s)", current_user.id, site.slug, bool(form.api_key.data))
            flash(f"Site {site.name} is saved.")
            return redirect(url_for("admin.list_sites"), 303)
    status = 400 if request.method == "POST" else 200
    return render_page("admin/site_edit.html", {}, status=status, section="sites", site=site, form=form, unreadable=not readable(site))


@bp.post("/sites/<slug>/delete")
def delete_site(slug: str):
    """Remove a site (its look-ups stay in the audit trail under its slug)."""
    site = site_or_404(slug)
    if site.from_environment:
        flash(f"{site.name} comes from POSTMETRIC_API_URL and POSTMETRIC_API_KEY; remove those from the server's environment to remove it.")
        return redirect(url_for("admin.list_sites"), 303)
    db.session.delete(site)
    db.session.commit()
    sites_changed()
    current_app.logger.info("admin %s deleted site %s", current_user.id, slug)
    flash(f"Site {site.name} is deleted.")
    return redirect(url_for("admin.list_sites"), 303)


@dataclass(frozen=True)
class ConnectionOutcome:
    """What "Test connection" found: ``verdict`` is ok, wrong_key, unreachable or problem."""

    verdict: str
    title: str
    message: str = ""
    kind: str = ""


def connection_outcome(site: Site) -> ConnectionOutcome:
    """Ask PostMetric with the stored key and sort the answer for the admin."""
    try:
        api_key = key_box().decrypt(site.api_key_encrypted)
    except UnreadableSecret:
        return ConnectionOutcome("wrong_key", "The stored key cannot be read", "Enter the key again under Edit.", "unreadable_key")
    service: VisitorService = current_app.extensions["visitor_service"]
    try:
        service.client_for(SiteRef(site.slug, site.name, site.base_url, api_key)).test_connection()
    except PostMetricError as error:
        cause = error.last_error if isinstance(error, DeadlineExceeded) else error
        if isinstance(cause, Unauthorized):
            verdict, title = "wrong_key", "PostMetric refused the key"
        elif isinstance(cause, (ConnectionFailed, UpstreamTimeout)):
            verdict, title = "unreachable", "PostMetric could not be reached at this base URL"
        else:
            verdict, title = "problem", error.title
        return ConnectionOutcome(verdict, title, error.message, error.kind)
    return ConnectionOutcome("ok", "Connected", "PostMetric accepted the key.", "ok")


@bp.post("/sites/<slug>/test")
def test_site(slug: str):
    """Test the connection; htmx swaps the result in place, without htmx the page comes back."""
    site = site_or_404(slug)
    outcome = connection_outcome(site)
    current_app.logger.info("admin %s tested site %s: %s", current_user.id, site.slug, outcome.kind)
    if request.htmx:
        return render_page("admin/sites.html", TEST_BLOCKS, target="connection-result", site=site, tested={site.id: outcome})
    return render_sites(tested={site.id: outcome})
