"""Hardening: login throttling, session rotation, cookie flags, security headers, CSRF,
open redirects, start-up refusal without a secret, error pages without traces."""
from __future__ import annotations

import json
import re
from urllib.parse import urlsplit

import pytest

from dashboard import create_app
from dashboard.config import ConfigError
from dashboard.integrations import SIGNED_BY_CALLER
from tests.conftest import AGENT_EMAIL, AGENT_PASSWORD, AuthActions, add_agent, make_settings
from tests.support.accounts import (
    ADMIN_EMAIL,
    ADMIN_PASSWORD,
    logged_in_client,
    make_admin,
)
from tests.support.html import one, soup
from tests.support.routes import url_for_rule

WRONG = "not the right password"


# -- login throttling ----------------------------------------------------------------------


def test_failed_logins_for_one_account_are_throttled_with_a_clear_message(app, auth):
    for _ in range(5):  # the default: 5 failures per account in 15 minutes
        assert auth.login(password=WRONG).status_code == 400
    refused = auth.login()  # even the right password, until the window has passed
    assert refused.status_code == 429
    assert re.search(r"Too many attempts\. Try again in 1[45] minutes\.", refused.text)
    assert 800 < int(refused.headers["Retry-After"]) <= 900
    assert one(soup(refused), 'input[name="email"]')  # the login page, not a bare error
    assert auth.client.get("/").status_code == 302  # not logged in


def test_account_throttling_follows_the_email_not_its_spelling(app, auth):
    for spelling in ["Agent@Example.com", "AGENT@example.com", " agent@example.com", "agent@EXAMPLE.com", "agent@example.com"]:
        auth.login(email=spelling, password=WRONG)
    assert auth.login().status_code == 429


def test_other_accounts_are_not_throttled_by_one_accounts_failures(app, auth):
    add_agent(app, "other@example.com", AGENT_PASSWORD)
    for _ in range(5):
        auth.login(password=WRONG)
    assert auth.login(email="other@example.com").status_code == 302


def test_many_accounts_tried_from_one_address_are_throttled(tmp_path, fake_api):
    app = create_app(make_settings(tmp_path, fake_api.url, login_limit_per_address="3 per 15 minutes"))
    add_agent(app)
    auth = AuthActions(app, app.test_client())
    for n in range(3):
        assert auth.login(email=f"guess{n}@example.com", password=WRONG).status_code == 400
    response = auth.login()
    assert response.status_code == 429
    assert "Too many attempts. Try again in" in response.text
    # Another address is not affected.
    elsewhere = app.test_client()
    elsewhere.environ_base["REMOTE_ADDR"] = "10.0.0.7"
    assert AuthActions(app, elsewhere).login().status_code == 302
    app.extensions["db_engine"].dispose()


@pytest.mark.parametrize("trusted_proxies", [0, 1])
def test_behind_a_trusted_proxy_the_forwarded_client_address_is_throttled(tmp_path, fake_api, trusted_proxies):
    app = create_app(
        make_settings(tmp_path, fake_api.url, login_limit_per_address="2 per 15 minutes", trusted_proxies=trusted_proxies)
    )
    add_agent(app)

    def client_at(address: str):
        client = app.test_client()
        client.environ_base.update(REMOTE_ADDR="127.0.0.1", HTTP_X_FORWARDED_FOR=address)
        return AuthActions(app, client)

    for n in range(2):
        client_at("203.0.113.5").login(email=f"guess{n}@example.com", password=WRONG)
    other_client = client_at("198.51.100.9").login()
    # Trusted: each client has its own limit. Not trusted: X-Forwarded-For is ignored, and
    # everyone shares the proxy's address (and a forged header cannot dodge the limit).
    assert other_client.status_code == (302 if trusted_proxies else 429)
    app.extensions["db_engine"].dispose()


def test_successful_logins_do_not_count(app, auth):
    for _ in range(8):
        assert auth.login().status_code == 302
        auth.logout()


def test_each_app_starts_with_fresh_limits(tmp_path, fake_api):
    for round_ in range(2):
        app = create_app(make_settings(tmp_path / str(round_), fake_api.url))
        add_agent(app)
        auth = AuthActions(app, app.test_client())
        for _ in range(5):
            auth.login(password=WRONG)
        assert auth.login().status_code == 429
        app.extensions["db_engine"].dispose()


# -- sessions and cookies ------------------------------------------------------------------


def session_cookie(client) -> str | None:
    cookie = client.get_cookie("session")
    return cookie.value if cookie else None


def test_the_session_changes_at_login_and_nothing_planted_survives(app, client, auth):
    client.get("/login")
    with client.session_transaction() as planted:
        planted["planted"] = "by an attacker"
    before = session_cookie(client)
    assert auth.login().status_code == 302
    after = session_cookie(client)
    assert before and after and before != after
    with client.session_transaction() as current:
        assert "planted" not in current
        assert current["_user_id"].startswith(f"{1}:")


def test_session_cookie_flags(app, client):
    set_cookie = client.get("/login").headers["Set-Cookie"]
    assert "HttpOnly" in set_cookie and "SameSite=Lax" in set_cookie
    assert "Secure" not in set_cookie  # plain http in development


def test_cookies_are_secure_when_served_over_https(app, auth):
    page = auth.client.get("/login", base_url="https://localhost")
    assert "; Secure" in page.headers["Set-Cookie"]
    from tests.conftest import csrf_token_from

    login = auth.client.post(
        "/login",
        base_url="https://localhost",
        data={"email": AGENT_EMAIL, "password": AGENT_PASSWORD, "remember": "y", "csrf_token": csrf_token_from(page.text)},
    )
    cookies = login.headers.getlist("Set-Cookie")
    assert {c.split("=", 1)[0] for c in cookies} >= {"session", "remember_token"}
    for cookie in cookies:
        assert "Secure" in cookie and "HttpOnly" in cookie and "SameSite=Lax" in cookie


def test_session_cookie_secure_setting_marks_cookies_secure_on_http_too(tmp_path, fake_api):
    app = create_app(make_settings(tmp_path, fake_api.url, session_cookie_secure=True))
    assert "Secure" in app.test_client().get("/login").headers["Set-Cookie"]
    app.extensions["db_engine"].dispose()


# -- security headers ----------------------------------------------------------------------

EXPECTED_CSP = {
    "default-src": "'self'",
    "script-src": "'self'",
    "style-src": "'self'",
    "img-src": "'self' data:",
    "object-src": "'none'",
    "base-uri": "'none'",
    "form-action": "'self'",
    "frame-ancestors": "'none'",
}


def csp_directives(header: str) -> dict[str, str]:
    return dict((part.strip().split(" ", 1) + [""])[:2] for part in header.split(";") if part.strip())


@pytest.mark.parametrize(
    "url", ["/login", "/", "/visitors/visitor_123", "/visitors/fail-500", "/no-such-page", "/static/app.js", "/healthz", "/admin/agents"]
)
def test_every_response_carries_the_security_headers(logged_in, url):
    with logged_in.get(url) as response:
        csp = csp_directives(response.headers["Content-Security-Policy"])
        for directive, value in EXPECTED_CSP.items():
            assert csp[directive] == value, directive
        assert "unsafe-inline" not in response.headers["Content-Security-Policy"]
        assert "unsafe-eval" not in response.headers["Content-Security-Policy"]
        assert response.headers["Referrer-Policy"] == "no-referrer"
        assert response.headers["X-Content-Type-Options"] == "nosniff"


def test_security_headers_on_htmx_fragments_and_redirects(logged_in, client):
    fragment = logged_in.get("/visitor?visitorId=visitor_123", headers={"HX-Request": "true", "HX-Target": "main"})
    redirect = client.get("/visitors/visitor_123", headers={"Cookie": ""})
    for response in (fragment, redirect):
        assert "script-src 'self'" in response.headers["Content-Security-Policy"]
        assert response.headers["Referrer-Policy"] == "no-referrer"


def test_frame_ancestors_is_configurable(tmp_path, fake_api):
    app = create_app(make_settings(tmp_path, fake_api.url, frame_ancestors="'self' https://intranet.example.com"))
    response = app.test_client().get("/login")
    assert csp_directives(response.headers["Content-Security-Policy"])["frame-ancestors"] == "'self' https://intranet.example.com"
    assert "X-Frame-Options" not in response.headers  # DENY would contradict the configured ancestors
    app.extensions["db_engine"].dispose()


def test_templates_hold_no_inline_script_or_style():
    from dashboard.config import PROJECT_ROOT

    for template in (PROJECT_ROOT / "templates").rglob("*.html"):
        source = template.read_text()
        assert not re.search(r"<script(?![^>]*\bsrc=)", source), template
        assert "<style" not in source and " style=" not in source, template
        assert not re.search(r"\son[a-z]+=", source), template  # no inline event handlers
        assert "hx-on" not in source and "js:" not in source, template


def test_htmx_is_configured_for_the_policy(logged_in):
    html = logged_in.get("/").text
    config = json.loads(one(soup(html), 'meta[name="htmx-config"]')["content"])
    assert config["includeIndicatorStyles"] is False and config["allowEval"] is False


# -- CSRF ----------------------------------------------------------------------------------


def post_rules(app):
    return sorted({rule.rule for rule in app.url_map.iter_rules() if "POST" in rule.methods})


def test_every_post_route_refuses_a_request_without_a_csrf_token(app, tmp_path):
    make_admin(app)
    client = logged_in_client(app, ADMIN_EMAIL, ADMIN_PASSWORD)
    values = {"agent_id": "1", "slug": "default", "token": "x"}
    rules = post_rules(app)
    assert {"/login", "/logout", "/password", "/admin/agents"} <= set(rules)
    # Help desks' routes carry no cookie of ours: a signature authenticates them instead,
    # and without one they refuse (tests/integration/test_helpdesk.py).
    signed = {rule.rule for rule in app.url_map.iter_rules() if getattr(app.view_functions[rule.endpoint], SIGNED_BY_CALLER, False)}
    for rule in signed:
        response = client.post(url_for_rule(rule, values), data={"email": ADMIN_EMAIL})
        assert 400 <= response.status_code < 500, rule
    for rule in sorted(set(rules) - signed):
        url = url_for_rule(rule, values)
        for headers in ({}, {"HX-Request": "true"}, {"HX-Request": "true", "X-CSRFToken": "forged"}):
            response = client.post(url, data={"email": ADMIN_EMAIL, "password": ADMIN_PASSWORD, "role": "agent"}, headers=headers)
            body = response.text
            assert "The form expired" in body, (url, headers)
            assert response.status_code == (200 if headers else 400), (url, headers)
    assert client.get("/admin/agents").status_code == 200  # still logged in: logout was refused too


def test_htmx_posts_send_the_token_from_the_body_headers(logged_in):
    html = logged_in.get("/").text
    token = json.loads(one(soup(html), "body")["hx-headers"])["X-CSRFToken"]
    response = logged_in.post("/logout", headers={"HX-Request": "true", "X-CSRFToken": token})
    assert response.status_code == 302 and urlsplit(response.headers["Location"]).path == "/login"


# -- redirects, start-up, errors -----------------------------------------------------------


@pytest.mark.parametrize("target", ["https://evil.example/", "//evil.example", "/\\evil.example", "javascript:alert(1)"])
def test_open_redirects_are_refused_before_and_after_login(client, auth, target):
    assert auth.login(next=target).headers["Location"] == "/"
    # Already logged in: the login page's own redirect obeys the same rule.
    response = client.get("/login", query_string={"next": target})
    assert response.status_code == 302 and response.headers["Location"] == "/"


def test_the_app_refuses_to_start_in_production_without_a_secret_key(monkeypatch, tmp_path):
    monkeypatch.setenv("DASHBOARD_ENV_FILE", str(tmp_path / "none.env"))
    monkeypatch.delenv("SECRET_KEY", raising=False)
    monkeypatch.delenv("DASHBOARD_MODE", raising=False)
    monkeypatch.setenv("DATABASE_URL", f"sqlite:///{tmp_path / 'x.sqlite3'}")
    with pytest.raises(ConfigError, match="SECRET_KEY is not set"):
        create_app()
    assert not (tmp_path / "x.sqlite3").exists()  # refused before touching anything


def test_an_unexpected_error_shows_no_trace(logged_in, app, monkeypatch):
    service = app.extensions["visitor_service"]

    def broken(*args, **kwargs):
        raise RuntimeError("secret internals: pm_0123456789abcdef at /srv/dashboard/lookup.py line 42")

    monkeypatch.setattr(service, "search", broken)
    for headers in ({}, {"HX-Request": "true", "HX-Target": "main"}):
        response = logged_in.get("/visitors/visitor_123", headers=headers)
        body = response.text
        assert "Something went wrong" in body
        for leak in ("Traceback", "RuntimeError", "secret internals", "pm_0123", "lookup.py"):
            assert leak not in body
    assert response.status_code == 200 and response.headers["HX-Retarget"] == "#messages"
