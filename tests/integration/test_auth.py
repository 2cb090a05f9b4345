"""Login, logout, the login requirement and the `next` rules (Flask client, real stand-in)."""
from __future__ import annotations

from urllib.parse import parse_qs, urlsplit

import pytest

from tests.conftest import AGENT_EMAIL, AGENT_PASSWORD, add_agent, csrf_token_from

PROTECTED = [
    "/",
    "/?visitorId=visitor_123",
    "/visitor?visitorId=visitor_123",
    "/visitors/visitor_123",
    "/visitors/visitor_123?session=s1&q=checkout&order=asc",
    "/visitor?visitorId=odd%2Fid%20%3F%23",
]


@pytest.mark.parametrize("url", PROTECTED)
def test_every_page_requires_login_and_remembers_where_it_was_going(client, url):
    response = client.get(url)
    assert response.status_code == 302
    location = urlsplit(response.headers["Location"])
    assert location.path == "/login"
    assert parse_qs(location.query)["next"] == [url]


@pytest.mark.parametrize("url", ["/healthz", "/login", "/static/app.css", "/static/htmx-2.0.11.min.js"])
def test_public_pages_need_no_login(client, url):
    with client.get(url) as response:  # static files stream: close them
        assert response.status_code == 200


def test_logout_requires_login(client):
    assert client.post("/logout").status_code in (302, 400)


@pytest.mark.parametrize("url", PROTECTED)
def test_login_returns_to_exactly_the_page_it_was_going_to(client, auth, url):
    response = auth.login(next=url)
    assert response.status_code == 302
    assert response.headers["Location"] == url


@pytest.mark.parametrize(
    "target",
    ["//evil.example", "https://evil.example/", "/\\evil.example", "javascript:alert(1)", "http:/evil.example", "\t//evil.example", ""],
)
def test_unsafe_next_is_refused(client, auth, target):
    response = auth.login(next=target)
    assert response.status_code == 302
    assert response.headers["Location"] == "/"


def test_wrong_password_and_unknown_email_get_the_same_generic_message(client, auth):
    wrong = auth.login(password="not the password")
    unknown = auth.login(email="nobody@example.com")
    for response in (wrong, unknown):
        assert response.status_code == 400
        assert "Wrong e-mail or password." in response.text
    assert client.get("/").status_code == 302  # still logged out


def test_email_is_case_insensitive(client, auth):
    assert auth.login(email=AGENT_EMAIL.upper()).status_code == 302
    assert client.get("/").status_code == 200


def test_inactive_agent_cannot_log_in(app, client):
    from dashboard.extensions import db
    from dashboard.models import Agent

    add_agent(app, "off@example.com", AGENT_PASSWORD)
    with app.app_context():
        agent = db.session.query(Agent).filter_by(email="off@example.com").one()
        agent.active = False
        db.session.commit()
    page = client.get("/login")
    response = client.post(
        "/login",
        data={"email": "off@example.com", "password": AGENT_PASSWORD, "csrf_token": csrf_token_from(page.text)},
    )
    assert response.status_code == 400


def test_login_without_csrf_token_is_refused(client, auth):
    response = client.post("/login", data={"email": AGENT_EMAIL, "password": AGENT_PASSWORD})
    assert response.status_code == 400
    assert "The form expired" in response.text
    assert client.get("/").status_code == 302


def test_remember_me_sets_a_long_lived_cookie(app, client, auth):
    from tests.conftest import AuthActions

    response = auth.login(remember="y")
    assert "remember_token=" in " ".join(response.headers.getlist("Set-Cookie"))
    plain = AuthActions(app, app.test_client()).login()
    assert "remember_token=" not in " ".join(plain.headers.getlist("Set-Cookie"))


def test_logout_is_a_post_with_csrf(logged_in):
    assert logged_in.get("/logout").status_code == 405
    refused = logged_in.post("/logout", data={})
    assert refused.status_code == 400
    assert logged_in.get("/").status_code == 200  # still logged in
    page = logged_in.get("/")
    response = logged_in.post("/logout", data={"csrf_token": csrf_token_from(page.text)})
    assert response.status_code == 302
    assert logged_in.get("/").status_code == 302


def test_logged_out_htmx_request_gets_hx_redirect_not_a_login_form(client):
    response = client.get(
        "/visitors/visitor_123?session=abc",
        headers={"HX-Request": "true", "HX-Target": "visitor-detail", "HX-Current-URL": "http://localhost/visitors/visitor_123?q=cart"},
    )
    assert response.status_code == 200
    assert response.text == ""
    location = urlsplit(response.headers["HX-Redirect"])
    assert location.path == "/login"
    assert parse_qs(location.query)["next"] == ["/visitors/visitor_123?q=cart"]


def test_healthz_reports_ok(client):
    assert client.get("/healthz").get_json() == {"status": "ok"}
