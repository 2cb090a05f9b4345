"""The Zendesk app package of one Zendesk integration, ready to upload as a private app."""
from __future__ import annotations

from flask import Response, abort, url_for
from sqlalchemy import select

from dashboard import zendesk
from dashboard.admin.blueprint import bp
from dashboard.extensions import db
from dashboard.models import Integration


@bp.get("/integrations/<slug>/zendesk-app.zip")
def download_zendesk_app(slug: str) -> Response:
    """The zip (manifest with signedUrls and this integration's sidebar URL, translations, logos)."""
    integration = db.session.scalar(select(Integration).where(Integration.slug == slug, Integration.kind == "zendesk"))
    if integration is None:
        abort(404)
    package = zendesk.app_package(
        name=f"Visitor Lookup ({integration.name})"[:100],
        sidebar_url=url_for("embed.zendesk_sidebar", slug=integration.slug, _external=True),
    )
    return Response(
        package,
        mimetype="application/zip",
        headers={"Content-Disposition": f'attachment; filename="visitor-lookup-zendesk-{integration.slug}.zip"'},
    )
