"""Managing PostMetric sites: add, edit (a key can be replaced, never read back), delete,
and test the connection with the stored key."""
from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from flask import abort, current_app, flash, redirect, request, url_for
from flask_login import current_user
from sqlalchemy import select

from dashboard.admin.blueprint import bp
from dashboard.addresses import AddressPolicy, AddressRefused, check_base_url, comparable_url
from dashboard.admin.forms import SiteForm
from dashboard.encryption import KeyBox, UnreadableSecret
from dashboard.extensions import db
from dashboard.models import Site
from dashboard.lookup import VisitorService
from dashboard.postmetric.errors import (
    AddressNotAllowed,
    ConnectionFailed,
    DeadlineExceeded,
    EndpointNotFound,
    Forbidden,
    PostMetricError,
    Unauthorized,
    UpstreamTimeout,
)
from dashboard.rendering import render_page, wants_fragment
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


def configured_sites() -> tuple[SiteRef, ...]:
    """This instance's sites from its environment (configuration: shown, never edited here)."""
    directory: SiteDirectory = current_app.extensions["site_directory"]
    return directory.configured


def configured_site(slug: str) -> SiteRef | None:
    return next((ref for ref in configured_sites() if ref.slug == slug), None)


@dataclass(frozen=True)
class SiteRow:
    """One line of the sites table: the environment's sites (``configured``: read-only
    here) and the database's alike."""

    slug: str
    name: str
    base_url: str
    key_hint: str
    configured: bool
    updated_at: datetime | None = None
    unreadable: bool = False

    @classmethod
    def of_configured(cls, ref: SiteRef) -> "SiteRow":
        return cls(ref.slug, ref.name, ref.base_url, f"…{ref.api_key[-4:]}", configured=True)

    @classmethod
    def of_stored(cls, site: Site) -> "SiteRow":
        return cls(site.slug, site.name, site.base_url, site.key_hint, configured=False, updated_at=site.updated_at, unreadable=not readable(site))


def render_sites(form: SiteForm | None = None, *, status: int = 200, tested: dict | None = None):
    stored = db.session.scalars(select(Site).order_by(Site.name)).all()
    return render_page(
        "admin/sites.html",
        TEST_BLOCKS,
        status=status,
        section="sites",
        sites=[*map(SiteRow.of_configured, configured_sites()), *map(SiteRow.of_stored, stored)],
        form=form or SiteForm(),
        tested=tested or {},
    )


def address_policy() -> AddressPolicy:
    service: VisitorService = current_app.extensions["visitor_service"]
    return service.address_policy


def check_address(form: SiteForm) -> bool:
    """Whether the form is valid and its base URL's host leads to an allowed address (this
    resolves the host, so it runs only once the rest of the form is valid)."""
    if form.errors:
        return False
    try:
        address_policy().check_url(form.base_url.data)
    except AddressRefused as problem:
        form.base_url.errors.append(f"This base URL cannot be used: {problem}.")
        return False
    return True


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
    if not check_address(form):
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


def moved_without_key(old_base_url: str, form: SiteForm) -> bool:
    """The form changes the base URL (scheme, host, port or path) but keeps the stored key.

    Even another path on the same host is a move: an endpoint there could show the key
    back in a form that no redaction foresees.
    """
    return comparable_url(form.base_url.data) != comparable_url(old_base_url) and not form.api_key.data


@bp.route("/sites/<slug>/edit", methods=["GET", "POST"])
def edit_site(slug: str):
    """Change a site's name, base URL or ticket URL template, or replace its key."""
    site = site_or_404(slug)
    form = SiteForm(obj=site) if request.method == "GET" else SiteForm()
    if request.method == "GET":
        form.api_key.data = ""
    elif form.validate_on_submit() and check_address(form):
        if moved_without_key(site.base_url, form):
            # The key goes only where it was entered for: otherwise an admin could point
            # the site at a host of their own and have the dashboard send them the key.
            form.api_key.errors.append(
                "The base URL has changed: enter the site's API key again. A stored "
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
    db.session.delete(site)
    db.session.commit()
    sites_changed()
    current_app.logger.info("admin %s deleted site %s", current_user.id, slug)
    flash(f"Site {site.name} is deleted.")
    return redirect(url_for("admin.list_sites"), 303)


@dataclass(frozen=True)
class ConnectionOutcome:
    """What "Test connection" found.

    ``kind`` is the category: connected, wrong_key, not_found, refused, timed_out or
    not_postmetric; ``verdict`` (ok, wrong_key or unreachable) colours it. The message is
    ours alone: nothing an upstream sent is echoed, so the button cannot be used to read
    internal services or to have a key reflected back.
    """

    verdict: str
    title: str
    message: str = ""
    kind: str = ""


def outcome_for(error: PostMetricError | None) -> ConnectionOutcome:
    """The category of a test's result, with a fixed sentence for each."""
    if error is None:
        return ConnectionOutcome("ok", "Connected", "PostMetric accepted the key.", "connected")
    cause = error.last_error if isinstance(error, DeadlineExceeded) else error
    status = f" (HTTP {cause.upstream_status})" if cause.upstream_status else ""
    if isinstance(cause, (Unauthorized, Forbidden)):
        return ConnectionOutcome(
            "wrong_key", "PostMetric refused the key", f"PostMetric answered that the key is not valid{status}: replace the key under Edit.", "wrong_key"
        )
    if isinstance(cause, AddressNotAllowed):
        return ConnectionOutcome("unreachable", "Refused: the address is not allowed", f"{cause.reason[:1].upper()}{cause.reason[1:]}. Nothing was sent.", "refused")
    if isinstance(cause, UpstreamTimeout):
        return ConnectionOutcome(
            "unreachable", "Timed out: PostMetric could not be reached at this base URL", "There was no answer in time. Check the base URL, or try again later.", "timed_out"
        )
    if isinstance(cause, ConnectionFailed):
        return ConnectionOutcome(
            "unreachable",
            "Refused: PostMetric could not be reached at this base URL",
            "No connection could be made (refused, unknown host or a failed secure connection). Check the base URL.",
            "refused",
        )
    if isinstance(cause, EndpointNotFound):
        return ConnectionOutcome(
            "unreachable", "Not found: no PostMetric API at this base URL", f"The address answered, but not with PostMetric's API{status}. Check the base URL's path.", "not_found"
        )
    return ConnectionOutcome(
        "problem", "Not PostMetric: the answer was not PostMetric's", f"The address answered{status}, but not the way PostMetric does. Check the base URL.", "not_postmetric"
    )


def connection_outcome(site: Site) -> ConnectionOutcome:
    """Ask PostMetric with the stored key and sort the answer for the admin."""
    try:
        api_key = key_box().decrypt(site.api_key_encrypted)
    except UnreadableSecret:
        return ConnectionOutcome("wrong_key", "The stored key cannot be read", "Enter the key again under Edit.", "unreadable_key")
    return site_outcome(SiteRef(site.slug, site.name, site.base_url, api_key))


def site_outcome(site: SiteRef) -> ConnectionOutcome:
    """Ask PostMetric at ``site`` with its key and sort the answer for the admin."""
    try:
        check_base_url(site.base_url)
    except AddressRefused as problem:
        # Saved before these rules existed; the client would refuse it.
        return outcome_for(AddressNotAllowed(str(problem)))
    service: VisitorService = current_app.extensions["visitor_service"]
    try:
        service.client_for(site).test_connection()
    except PostMetricError as error:
        return outcome_for(error)
    return outcome_for(None)


@bp.post("/sites/<slug>/test")
def test_site(slug: str):
    """Test the connection; htmx swaps the result in place, without htmx the page comes back."""
    site = configured_site(slug) or site_or_404(slug)
    outcome = site_outcome(site) if isinstance(site, SiteRef) else connection_outcome(site)
    current_app.logger.info("admin %s tested site %s: %s", current_user.id, site.slug, outcome.kind)
    if wants_fragment():
        return render_page("admin/sites.html", TEST_BLOCKS, target="connection-result", site=site, tested={site.slug: outcome})
    return render_sites(tested={site.slug: outcome})
