"""Helpers for tests that need an admin, a second site or a form POST."""
from __future__ import annotations

from dashboard.extensions import db
from dashboard.models import Agent, Site
from dashboard.sites import store_key
from tests.conftest import AGENT_EMAIL, AGENT_PASSWORD, AuthActions, add_agent, csrf_token_from

ADMIN_EMAIL = "admin@example.com"
ADMIN_PASSWORD = "admin password 12345"


def logged_in_client(app, email: str = AGENT_EMAIL, password: str = AGENT_PASSWORD):
    client = app.test_client()
    response = AuthActions(app, client).login(email=email, password=password)
    assert response.status_code == 302, response.text[:500]
    return client


def csrf_of(client, page: str = "/") -> str:
    return csrf_token_from(client.get(page, follow_redirects=True).text)


def post(client, url: str, data: dict | None = None, **kwargs):
    """POST ``data`` with a valid CSRF token of ``client``'s session."""
    return client.post(url, data={"csrf_token": csrf_of(client), **(data or {})}, **kwargs)


def agent_id(app, email: str) -> int:
    with app.app_context():
        return db.session.query(Agent).filter_by(email=email).one().id


def add_site(app, slug: str, name: str, base_url: str, api_key: str) -> None:
    """Store a site as the admin pages do (key encrypted) and make look-ups see it."""
    with app.app_context():
        site = Site(slug=slug, name=name, base_url=base_url)
        store_key(site, api_key, app.extensions["key_box"])
        db.session.add(site)
        db.session.commit()
    app.extensions["site_directory"].invalidate()


def make_admin(app, email: str = ADMIN_EMAIL, password: str = ADMIN_PASSWORD) -> int:
    return add_agent(app, email, password, admin=True)
