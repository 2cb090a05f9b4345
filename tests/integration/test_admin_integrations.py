"""Admin → Integrations: add, edit, rotate, remove (each in the audit trail), secrets
encrypted at rest and shown by their last four, and agents linked to Zendesk users."""
from __future__ import annotations

import pytest
from sqlalchemy import select, text

from dashboard.extensions import db
from dashboard.models import Agent, Integration, LookupEvent
from tests.conftest import AGENT_EMAIL, add_agent
from tests.support.accounts import ADMIN_EMAIL, ADMIN_PASSWORD, logged_in_client, make_admin, post
from tests.support.helpdesk import intercom_payload, rsa_key_pair, signed
from tests.support.html import soup, texts

SECRET = "first-intercom-secret-abcd"
NEW_SECRET = "second-intercom-secret-wxyz"


@pytest.fixture
def admin(app):
    make_admin(app)
    add_agent(app)
    return logged_in_client(app, ADMIN_EMAIL, ADMIN_PASSWORD)


def integration(app, slug: str) -> Integration | None:
    with app.app_context():
        found = db.session.scalars(select(Integration).where(Integration.slug == slug)).first()
        if found is not None:
            db.session.expunge(found)
        return found


def admin_events(app) -> list[tuple[str, str | None]]:
    with app.app_context():
        rows = db.session.scalars(select(LookupEvent).order_by(LookupEvent.id)).all()
        return [(row.action, row.integration) for row in rows]


def add_intercom(admin, **changes):
    data = {"name": "Support inbox", "kind": "intercom", "account": "ecahpwf5", "site_slug": "", "visitor_field": "visitorId", "secret": SECRET, **changes}
    return post(admin, "/admin/integrations", data, follow_redirects=False)


def test_adding_an_intercom_integration_stores_the_secret_encrypted_and_shows_its_last_four(app, admin):
    response = add_intercom(admin)
    assert response.status_code == 303 and response.headers["Location"].endswith("/admin/integrations/support-inbox")
    stored = integration(app, "support-inbox")
    assert stored.kind == "intercom" and stored.visitor_field == "visitorId" and stored.site_slug is None
    with app.app_context():
        raw = db.session.execute(text("select secret_encrypted from integrations")).scalar_one()
    assert SECRET not in raw and app.extensions["key_box"].decrypt(raw) == SECRET
    listing = admin.get("/admin/integrations").text
    assert "…abcd" in listing and SECRET not in listing
    page = admin.get("/admin/integrations/support-inbox").text
    assert SECRET not in page
    assert "http://localhost/integrations/intercom/support-inbox/initialize" in texts(soup(page), "code")
    assert admin_events(app) == [("integration_add", "support-inbox")]


def test_the_integration_answers_once_added_through_the_page(app, admin):
    add_intercom(admin)
    body, headers = signed(intercom_payload(AGENT_EMAIL, "visitor_123"), SECRET)
    response = app.test_client(use_cookies=False).post("/integrations/intercom/support-inbox/initialize", data=body, headers=headers)
    assert response.status_code == 200, response.text


@pytest.mark.parametrize(
    "changes, message",
    [
        ({"secret": ""}, "Enter the secret."),
        ({"secret": "short"}, "at least 16 characters"),
        ({"visitor_field": ""}, "contact attribute"),
        ({"name": ""}, "Give the integration a name."),
        ({"kind": "zendesk", "account": "not a subdomain!", "visitor_field": "360001"}, "Zendesk subdomain"),
        ({"kind": "zendesk", "account": "acme", "visitor_field": "visitorId"}, "ticket field's ID"),
        ({"kind": "zendesk", "account": "acme", "visitor_field": "360001", "public_key_pem": "hello"}, "not a PEM public key"),
    ],
)
def test_a_form_with_a_problem_says_which_and_stores_nothing(app, admin, changes, message):
    response = add_intercom(admin, **changes)
    assert response.status_code == 400 and message in soup(response.text).get_text()
    with app.app_context():
        assert db.session.scalars(select(Integration)).first() is None
    assert admin_events(app) == []


def test_a_zendesk_integration_keeps_its_public_key_and_trust_choice(app, admin):
    public = rsa_key_pair()[1]
    response = add_intercom(admin, kind="zendesk", name="Zendesk", account="Acme", installation_id="123456", visitor_field="360001", public_key_pem=public, trust_all_agents="y", secret="")
    assert response.status_code == 303
    stored = integration(app, "zendesk")
    assert (stored.account, stored.installation_id, stored.visitor_field, stored.trust_all_agents) == ("acme", "123456", "360001", True)
    assert stored.public_key_pem == public.strip() and stored.secret_encrypted is None
    assert 'href="/admin/integrations/zendesk/zendesk-app.zip"' in admin.get("/admin/integrations").text


def test_a_zendesk_integration_is_saved_before_its_key_exists(app, admin):
    """Zendesk makes the app's key pair only when the package (which needs the saved
    integration) is uploaded: the key is pasted afterwards."""
    response = add_intercom(admin, kind="zendesk", name="Zendesk", account="acme", installation_id="123456", visitor_field="360001", secret="")
    assert response.status_code == 303
    assert integration(app, "zendesk").public_key_pem is None
    assert admin.get("/admin/integrations/zendesk/zendesk-app.zip").status_code == 200


def test_rotating_keeps_the_old_secret_until_the_rotation_ends_and_each_step_is_audited(app, admin):
    add_intercom(admin)
    caller = app.test_client(use_cookies=False)
    url = "/integrations/intercom/support-inbox/initialize"

    def status_with(secret: str) -> int:
        body, headers = signed(intercom_payload(AGENT_EMAIL, "visitor_123"), secret)
        return caller.post(url, data=body, headers=headers).status_code

    assert post(admin, "/admin/integrations/support-inbox/rotate", {"secret": NEW_SECRET}).status_code == 303
    assert (status_with(SECRET), status_with(NEW_SECRET)) == (200, 200)
    page = admin.get("/admin/integrations").text
    assert "…wxyz" in page and "…abcd" in page
    assert post(admin, "/admin/integrations/support-inbox/end-rotation").status_code == 303
    assert (status_with(SECRET), status_with(NEW_SECRET)) == (401, 200)
    actions = [action for action, _ in admin_events(app) if action.startswith("integration_")]
    assert actions == ["integration_add", "integration_rotate", "integration_rot_end"]


def test_editing_without_a_secret_keeps_it_and_removing_refuses_the_help_desk(app, admin):
    add_intercom(admin)
    response = post(admin, "/admin/integrations/support-inbox", {"name": "Inbox", "account": "x", "site_slug": "default", "visitor_field": "vid", "secret": ""})
    assert response.status_code == 303
    stored = integration(app, "support-inbox")
    assert (stored.name, stored.site_slug, stored.visitor_field, stored.secret_last4) == ("Inbox", "default", "vid", "abcd")
    assert post(admin, "/admin/integrations/support-inbox/delete").status_code == 303
    assert integration(app, "support-inbox") is None
    body, headers = signed(intercom_payload(AGENT_EMAIL, "visitor_123"), SECRET)
    response = app.test_client(use_cookies=False).post("/integrations/intercom/support-inbox/initialize", data=body, headers=headers)
    assert response.status_code == 404
    assert [action for action, _ in admin_events(app)] == ["integration_add", "integration_edit", "integration_remove"]


def test_an_agent_is_linked_to_a_zendesk_user_once(app, admin):
    with app.app_context():
        agent_id = db.session.scalars(select(Agent.id).where(Agent.email == AGENT_EMAIL)).one()
        admin_id = db.session.scalars(select(Agent.id).where(Agent.email == ADMIN_EMAIL)).one()
    assert post(admin, f"/admin/agents/{agent_id}/zendesk-user", {"zendesk_user_id": "Acme/3940581"}).status_code == 303
    taken = post(admin, f"/admin/agents/{admin_id}/zendesk-user", {"zendesk_user_id": "acme/3940581"}, follow_redirects=True)
    assert "already linked to agent@example.com" in taken.text
    # The same ID in another Zendesk account is another person.
    assert post(admin, f"/admin/agents/{admin_id}/zendesk-user", {"zendesk_user_id": "acme-sandbox/3940581"}).status_code == 303
    for bad_value in ("3940581", "acme/abc", "acme 3940581"):
        bad = post(admin, f"/admin/agents/{agent_id}/zendesk-user", {"zendesk_user_id": bad_value}, follow_redirects=True)
        assert "Write the Zendesk user as account/ID" in bad.text
    with app.app_context():
        assert db.session.get(Agent, agent_id).zendesk_user_id == "acme/3940581"
        assert db.session.get(Agent, admin_id).zendesk_user_id == "acme-sandbox/3940581"
    assert post(admin, f"/admin/agents/{agent_id}/zendesk-user", {"zendesk_user_id": ""}).status_code == 303
    with app.app_context():
        assert db.session.get(Agent, agent_id).zendesk_user_id is None
    # Each change of who the sidebar knows is in the audit trail, before it takes effect.
    links = [event for event in admin_events(app) if event[0] == "zendesk_user_link"]
    assert len(links) == 3


def test_the_admin_nav_names_integrations(admin):
    nav = soup(admin.get("/admin/integrations").text).select_one("nav.admin-nav")
    assert "Integrations" in [a.get_text(strip=True) for a in nav.select("a")]
    assert nav.select_one('a[aria-current="page"]').get_text(strip=True) == "Integrations"
