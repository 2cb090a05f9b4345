"""Roles and agent management: admin pages, set-password links, disabling, own password."""
from __future__ import annotations

import tempfile
from pathlib import Path
from urllib.parse import urlsplit

import pytest

from dashboard import create_app
from dashboard.extensions import db
from dashboard.models import Agent
from tests.conftest import AGENT_EMAIL, AGENT_PASSWORD, AuthActions, add_agent, make_settings
from tests.support.accounts import (
    ADMIN_EMAIL,
    ADMIN_PASSWORD,
    add_site,
    csrf_of,
    logged_in_client,
    make_admin,
    post,
)
from tests.support.helpdesk import add_integration, rsa_key_pair
from tests.support.html import one, soup, text_of
from tests.support.routes import url_for_rule

NEW_PASSWORD = "a brand new passphrase"


def admin_routes() -> list[tuple[str, str]]:
    """(rule, method) for every route under /admin in the real app, so that a route added
    later is checked without anyone remembering to add it here."""
    with tempfile.TemporaryDirectory() as folder:
        app = create_app(make_settings(Path(folder), None))
        routes = sorted(
            (rule.rule, method)
            for rule in app.url_map.iter_rules()
            if rule.rule.startswith("/admin")
            for method in sorted(rule.methods - {"HEAD", "OPTIONS"})
        )
        app.extensions["db_engine"].dispose()
    return routes


ADMIN_ROUTES = admin_routes()
# A value for each URL variable of the admin routes (a new variable fails the test below).
URL_VALUES = {"agent_id": "2", "slug": "shop"}


@pytest.fixture
def team(app):
    """An admin (id 1) and an agent (id 2), each logged in with their own client, and a
    site in the database for the site routes."""
    add_site(app, "shop", "Shop", "http://127.0.0.1:9", "pm_" + "1" * 64)
    make_admin(app)
    add_agent(app)
    # The integration routes' <slug> (a Zendesk one: its app package route needs one too).
    add_integration(app, "zendesk", URL_VALUES["slug"], visitor_field="360001", public_key_pem=rsa_key_pair()[1])
    return logged_in_client(app, ADMIN_EMAIL, ADMIN_PASSWORD), logged_in_client(app)


def request_as(client, method: str, url: str):
    if method == "GET":
        return client.get(url)
    return post(client, url, {"role": "agent", "email": "new@example.com", "name": "Shop", "base_url": "http://127.0.0.1:9", "api_key": "pm_" + "1" * 64})


def test_the_admin_area_has_routes_to_check():
    assert len(ADMIN_ROUTES) >= 12
    assert ("/admin/agents", "POST") in ADMIN_ROUTES and ("/admin/audit", "GET") in ADMIN_ROUTES


@pytest.mark.parametrize("rule,method", ADMIN_ROUTES)
def test_every_admin_route_is_for_admins_only(app, team, rule, method):
    admin, agent = team
    url = url_for_rule(rule, URL_VALUES)
    refused = request_as(agent, method, url)
    assert refused.status_code == 403, refused.text[:300]
    headers = {"HX-Request": "true", "HX-Target": "main", "X-CSRFToken": csrf_of(agent)}
    assert "Not allowed" in agent.open(url, method=method, headers=headers).text  # in place, for htmx too

    logged_out = app.test_client().open(url, method=method)
    if method == "POST":
        assert logged_out.status_code in (302, 400)  # no session: refused by CSRF or sent to login
    else:
        assert logged_out.status_code == 302 and urlsplit(logged_out.headers["Location"]).path == "/login"

    allowed = request_as(admin, method, url)
    assert allowed.status_code in (200, 302, 303, 400), allowed.text[:300]


def test_the_admin_link_is_shown_to_admins_only(team):
    admin, agent = team
    assert soup(admin.get("/")).select('a[href="/admin/"]')
    assert not soup(agent.get("/")).select('a[href="/admin/"]')


def test_admin_lists_agents(team):
    admin, _ = team
    html = admin.get("/admin/agents").text
    assert ADMIN_EMAIL in html and AGENT_EMAIL in html
    assert "Add an agent" in html


def set_password_link(html: str) -> str:
    return text_of(one(soup(html), "#set-password-link"))


def test_adding_an_agent_gives_a_one_time_link_that_expires(app, team):
    admin, _ = team
    response = post(admin, "/admin/agents", {"email": "New.Agent@Example.com"})
    assert response.status_code == 200 and response.headers["Cache-Control"] == "no-store"
    link = set_password_link(response.text)
    path = urlsplit(link).path
    assert path.startswith("/set-password/")

    visitor = app.test_client()
    page = visitor.get(path)
    assert page.status_code == 200 and "new.agent@example.com" in page.text
    short = post(visitor, path, {"password": "too short", "confirm": "too short"}, follow_redirects=False)
    assert short.status_code == 400 and "at least 12 characters" in short.text
    done = post(visitor, path, {"password": NEW_PASSWORD, "confirm": NEW_PASSWORD})
    assert done.status_code == 303 and urlsplit(done.headers["Location"]).path == "/login"
    assert AuthActions(app, app.test_client()).login(email="new.agent@example.com", password=NEW_PASSWORD).status_code == 302

    again = post(app.test_client(), path, {"password": "another passphrase!", "confirm": "another passphrase!"})
    assert again.status_code == 400 and "already been used" in again.text


def test_a_set_password_link_expires(app, team, monkeypatch):
    admin, _ = team
    link = set_password_link(post(admin, "/admin/agents", {"email": "late@example.com"}).text)
    import dashboard.password_links as tokens

    monkeypatch.setattr(tokens, "link_max_age_seconds", lambda: -1)
    response = app.test_client().get(urlsplit(link).path)
    assert response.status_code == 400 and "expired" in response.text


def test_a_forged_link_is_refused(app):
    response = app.test_client().get("/set-password/eyJhZ2VudCI6MX0.forged.signature")
    assert response.status_code == 400 and "not valid" in response.text


def test_duplicate_and_invalid_emails_are_refused(team):
    admin, _ = team
    assert "exists already" in post(admin, "/admin/agents", {"email": AGENT_EMAIL.upper()}).text
    assert "Enter an e-mail address" in post(admin, "/admin/agents", {"email": "not an address"}).text


def test_disabling_an_agent_ends_their_session_on_the_next_request(app, team):
    admin, agent = team
    assert agent.get("/visitors/visitor_123").status_code == 200
    response = post(admin, "/admin/agents/2/disable")
    assert response.status_code == 303
    after = agent.get("/visitors/visitor_123")
    assert after.status_code == 302 and urlsplit(after.headers["Location"]).path == "/login"
    htmx = agent.get("/visitors/visitor_123", headers={"HX-Request": "true", "HX-Target": "main"})
    assert urlsplit(htmx.headers["HX-Redirect"]).path == "/login"
    assert AuthActions(app, app.test_client()).login().status_code == 400  # cannot log in again

    assert post(admin, "/admin/agents/2/enable").status_code == 303
    assert AuthActions(app, app.test_client()).login().status_code == 302


def test_disabling_ends_remembered_sessions_too(app, team):
    admin, _ = team
    remembered = app.test_client()
    AuthActions(app, remembered).login(remember="y")
    remembered.delete_cookie("session")  # the browser was closed: only the remember cookie is left
    assert remembered.get("/").status_code == 200
    post(admin, "/admin/agents/2/disable")
    remembered.delete_cookie("session")
    assert remembered.get("/").status_code == 302


def test_resetting_a_password_voids_the_old_one_and_ends_sessions(app, team):
    admin, agent = team
    response = post(admin, "/admin/agents/2/reset-password")
    link = set_password_link(response.text)
    assert "no longer work" in response.text
    assert agent.get("/").status_code == 302
    assert AuthActions(app, app.test_client()).login().status_code == 400
    post(app.test_client(), urlsplit(link).path, {"password": NEW_PASSWORD, "confirm": NEW_PASSWORD})
    assert AuthActions(app, app.test_client()).login(password=NEW_PASSWORD).status_code == 302


def test_a_newer_link_voids_the_older_one(app, team):
    admin, _ = team
    first = set_password_link(post(admin, "/admin/agents/2/reset-password").text)
    post(admin, "/admin/agents/2/reset-password")
    assert "newer one replaced it" in app.test_client().get(urlsplit(first).path).text


def test_changing_roles_takes_effect_at_once(app, team):
    admin, agent = team
    assert agent.get("/admin/agents").status_code == 403
    post(admin, "/admin/agents/2/role", {"role": "admin"})
    assert agent.get("/admin/agents").status_code == 200
    post(admin, "/admin/agents/2/role", {"role": "agent"})
    assert agent.get("/admin/agents").status_code == 403
    assert post(admin, "/admin/agents/2/role", {"role": "owner"}).status_code == 400


def test_the_last_active_admin_cannot_be_disabled_or_demoted(app, team):
    admin, _ = team
    for action, data in (("disable", {}), ("role", {"role": "agent"})):
        response = post(admin, f"/admin/agents/1/{action}", data, follow_redirects=True)
        assert "last active admin" in response.text
    with app.app_context():
        me = db.session.get(Agent, 1)
        assert me.active and me.is_admin
    assert admin.get("/admin/agents").status_code == 200
    # With a second admin, the first may step down.
    post(admin, "/admin/agents/2/role", {"role": "admin"})
    post(admin, "/admin/agents/1/role", {"role": "agent"})
    assert admin.get("/admin/agents").status_code == 403


def test_a_disabled_admin_does_not_count_as_the_other_admin(app, team):
    admin, _ = team
    post(admin, "/admin/agents/2/role", {"role": "admin"})
    post(admin, "/admin/agents/2/disable")
    assert "last active admin" in post(admin, "/admin/agents/1/disable", follow_redirects=True).text


def test_an_agent_changes_their_own_password(app, team):
    _, agent = team
    elsewhere = logged_in_client(app)  # the same agent on another computer
    page = agent.get("/password")
    assert page.status_code == 200 and "Current password" in page.text
    wrong = post(agent, "/password", {"current_password": "wrong password!", "password": NEW_PASSWORD, "confirm": NEW_PASSWORD})
    assert wrong.status_code == 400 and "not your current password" in wrong.text
    short = post(agent, "/password", {"current_password": AGENT_PASSWORD, "password": "short", "confirm": "short"})
    assert short.status_code == 400 and "at least 12 characters" in short.text
    differ = post(agent, "/password", {"current_password": AGENT_PASSWORD, "password": NEW_PASSWORD, "confirm": NEW_PASSWORD + "!"})
    assert differ.status_code == 400 and "differ" in differ.text
    done = post(agent, "/password", {"current_password": AGENT_PASSWORD, "password": NEW_PASSWORD, "confirm": NEW_PASSWORD})
    assert done.status_code == 303
    assert agent.get("/").status_code == 200  # this browser stays logged in
    assert elsewhere.get("/").status_code == 302  # the other session ended
    assert AuthActions(app, app.test_client()).login(password=NEW_PASSWORD).status_code == 302
    assert AuthActions(app, app.test_client()).login().status_code == 400


def test_the_password_rule_is_the_same_everywhere():
    from dashboard import cli, passwords

    assert cli.MIN_PASSWORD_LENGTH == passwords.MIN_PASSWORD_LENGTH == 12
    agent = Agent(email="x@example.com")
    with pytest.raises(ValueError, match="at least 12"):
        agent.set_password("eleven chrs")
    agent.set_password("twelve chars")
