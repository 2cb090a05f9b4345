"""Zendesk's ticket sidebar: POST /embed/zendesk/<slug> with Zendesk's signed token, then
the card with our token, against the bundled PostMetric stand-in on a loopback port."""
from __future__ import annotations

import io
import json
import logging
import time
import zipfile

import pytest
from sqlalchemy import select

from dashboard import zendesk
from dashboard.demo.data import EXAMPLE_VISITOR_ID, SIGNALS_CONTACT_AT, SIGNALS_VISITOR_ID
from dashboard.extensions import db
from dashboard.models import LookupEvent
from tests.conftest import add_agent
from tests.support.html import one, soup, text_of
from tests.support.zendesk import (
    FIELD,
    SLUG,
    add_integration,
    link_agent,
    INSTALLATION_ID,
    SUBDOMAIN,
    ZENDESK_USER_ID,
    claims,
    key_pair,
    sign,
    signed_with_public_key_as_hmac_secret,
    unsigned,
)

ORIGIN = f"https://{SUBDOMAIN}.zendesk.com"
SIDEBAR = f"/embed/zendesk/{SLUG}?origin={ORIGIN}&app_guid=guid-1"
CARD = f"/embed/zendesk/{SLUG}/card"


@pytest.fixture
def integration_id(app):
    return add_integration(app)


@pytest.fixture
def agent_id(app):
    agent_id = add_agent(app)
    link_agent(app, agent_id)
    return agent_id


def open_sidebar(client, token: str | None, url: str = SIDEBAR):
    return client.post(url, data={} if token is None else {"token": token})


def card_token_of(response) -> str:
    return one(soup(response), "#zendesk-sidebar")["data-card-token"]


def refusal_of(response) -> str:
    return text_of(one(soup(response), ".embed-refusal"))


def frame_ancestors(response) -> str:
    policy = dict(part.strip().split(" ", 1) for part in response.headers["Content-Security-Policy"].split(";"))
    return policy["frame-ancestors"]


def test_a_signed_load_answers_the_sidebar_page_framed_only_by_that_zendesk(client, integration_id, agent_id):
    response = open_sidebar(client, sign(claims()))
    assert response.status_code == 200
    root = one(soup(response), "#zendesk-sidebar")
    assert root["data-field-path"] == f"ticket.customField:custom_field_{FIELD}"
    assert root["data-card-url"] == CARD
    assert frame_ancestors(response) == ORIGIN
    assert "X-Frame-Options" not in response.headers
    assert "Set-Cookie" not in response.headers
    scripts = [tag["src"] for tag in soup(response.text).select("script")]
    assert any("zaf_sdk-2.0.11" in src for src in scripts) and any(src.endswith("/embed.js") for src in scripts)
    assert not soup(response.text).select("script:not([src])")  # the CSP forbids inline scripts


def test_other_pages_keep_the_policy_that_forbids_framing(client, integration_id):
    response = client.get("/login")
    assert frame_ancestors(response) == "'none'"
    assert response.headers["X-Frame-Options"] == "DENY"


@pytest.mark.parametrize(
    ("token", "status", "words"),
    [
        pytest.param(None, 401, "no signed Zendesk token", id="unsigned"),
        pytest.param(sign(claims(issued=time.time() - 3600)), 401, "expired", id="expired"),
        pytest.param(sign(claims(installation_id="1")), 401, "another app installation", id="wrong-aud"),
        pytest.param(sign(claims(subdomain="globex")), 401, "another Zendesk account", id="foreign"),
        pytest.param(sign(claims(), key="other"), 401, "not signed by this integration", id="wrong-key"),
        pytest.param(unsigned(claims()), 401, "not signed by this integration", id="alg-none"),
        pytest.param(signed_with_public_key_as_hmac_secret(claims()), 401, "not signed", id="hs256-public-key"),
        pytest.param(sign(claims(location="top_bar")), 403, "ticket's sidebar", id="wrong-location"),
        pytest.param(sign(claims(user_id="9999")), 403, "not linked to an active Visitor Lookup agent", id="unlinked-user"),
    ],
)
def test_every_refusal_is_a_page_with_a_sentence(client, integration_id, agent_id, token, status, words, caplog):
    caplog.set_level(logging.DEBUG)
    response = open_sidebar(client, token)
    assert response.status_code == status
    assert words in refusal_of(response)
    assert not soup(response.text).select("#zendesk-sidebar")
    assert frame_ancestors(response) == ORIGIN  # the sentence shows inside Zendesk
    if token:
        assert not [part for part in token.split(".") if part and part in caplog.text]


def test_a_token_replayed_after_expiry_is_refused(client, integration_id, agent_id, monkeypatch):
    token = sign(claims(lifetime=60))
    assert open_sidebar(client, token).status_code == 200
    later = time.time() + 60 + zendesk.LEEWAY_SECONDS + 5
    monkeypatch.setattr(zendesk.time, "time", lambda: later)
    response = open_sidebar(client, token)
    assert response.status_code == 401
    assert "expired" in refusal_of(response)


def test_a_disabled_agent_sees_no_card(app, client, integration_id, agent_id):
    link_agent(app, agent_id, active=False)
    response = open_sidebar(client, sign(claims()))
    assert response.status_code == 403
    assert "active Visitor Lookup agent" in refusal_of(response)


def test_a_link_to_the_same_user_id_in_another_zendesk_account_is_not_this_user(app, client, integration_id, agent_id):
    # User IDs mean something only within their Zendesk account: linked in another account,
    # this signed-in user is nobody here.
    link_agent(app, agent_id, account="acme-sandbox")
    response = open_sidebar(client, sign(claims()))
    assert response.status_code == 403
    assert "active Visitor Lookup agent" in refusal_of(response)


def test_an_origin_other_than_the_integrations_is_refused(client, integration_id, agent_id):
    response = open_sidebar(client, sign(claims()), url=f"/embed/zendesk/{SLUG}?origin=https://evil.example&app_guid=g")
    assert response.status_code == 400
    assert ORIGIN in refusal_of(response)


def test_an_unknown_integration_is_a_404_with_a_sentence(client, integration_id, agent_id):
    response = open_sidebar(client, sign(claims()), url=f"/embed/zendesk/nope?origin={ORIGIN}&app_guid=g")
    assert response.status_code == 404
    assert "no Zendesk integration" in refusal_of(response)


def test_an_integration_without_a_key_says_so(app, client, agent_id):
    add_integration(app, public_key_pem=None)
    response = open_sidebar(client, sign(claims()))
    assert response.status_code == 503
    assert "public key" in refusal_of(response)


def test_the_card_loads_with_our_token_and_is_audited(app, client, integration_id, agent_id):
    token = card_token_of(open_sidebar(client, sign(claims())))
    client.delete_cookie("session")
    response = client.get(
        CARD,
        query_string={"visitorId": SIGNALS_VISITOR_ID, "at": SIGNALS_CONTACT_AT, "ticket": "4521"},
        headers={"Authorization": f"Bearer {token}", "HX-Request": "true"},
    )
    assert response.status_code == 200, response.text
    assert SIGNALS_VISITOR_ID in response.text
    assert "Set-Cookie" not in response.headers
    with app.app_context():
        event = db.session.scalars(select(LookupEvent).order_by(LookupEvent.id.desc())).first()
    assert (event.agent_id, event.visitor_id, event.ticket) == (agent_id, SIGNALS_VISITOR_ID, "4521")
    assert event.integration == SLUG
    assert event.helpdesk_agent == f"{ORIGIN}/api/v2/users/{ZENDESK_USER_ID}.json"


def test_the_card_without_a_visitor_id_says_which_field_is_empty(client, integration_id, agent_id):
    token = card_token_of(open_sidebar(client, sign(claims())))
    response = client.get(CARD, query_string={"visitorId": " "}, headers={"Authorization": f"Bearer {token}"})
    assert response.status_code == 400
    assert FIELD in refusal_of(response)


def card_refusal(client, token: str | None):
    headers = {} if token is None else {"Authorization": f"Bearer {token}"}
    return client.get(CARD, query_string={"visitorId": EXAMPLE_VISITOR_ID}, headers=headers)


def test_the_card_without_a_token_is_refused(client, integration_id, agent_id):
    response = card_refusal(client, None)
    assert response.status_code == 401
    assert "without the sidebar's token" in refusal_of(response)


def test_the_card_with_an_expired_token_is_refused(app, client, integration_id, agent_id, monkeypatch):
    token = zendesk.issue_card_token(app.config["SECRET_KEY"], integration_id, ZENDESK_USER_ID)
    assert card_refusal(client, token).status_code == 200
    later = time.time() + zendesk.CARD_TOKEN_SECONDS + 5
    monkeypatch.setattr("itsdangerous.timed.time.time", lambda: later)
    response = card_refusal(client, token)
    assert response.status_code == 401
    assert "expired" in refusal_of(response)


def test_the_card_with_another_integrations_token_is_refused(app, client, integration_id, agent_id):
    other = add_integration(app, slug="globex-support")
    response = card_refusal(client, zendesk.issue_card_token(app.config["SECRET_KEY"], other, ZENDESK_USER_ID))
    assert response.status_code == 403
    assert "another integration" in refusal_of(response)


def test_the_card_for_another_unlinked_user_is_refused(app, client, integration_id, agent_id):
    response = card_refusal(client, zendesk.issue_card_token(app.config["SECRET_KEY"], integration_id, "777"))
    assert response.status_code == 403
    assert "not linked" in refusal_of(response)


def test_the_card_stops_when_the_agent_is_disabled(app, client, integration_id, agent_id):
    token = zendesk.issue_card_token(app.config["SECRET_KEY"], integration_id, ZENDESK_USER_ID)
    link_agent(app, agent_id, active=False)
    assert card_refusal(client, token).status_code == 403


def test_a_forged_token_is_refused(client, integration_id, agent_id):
    forged = zendesk.issue_card_token("some-other-secret-0123456789", integration_id, ZENDESK_USER_ID)
    response = card_refusal(client, forged)
    assert response.status_code == 401
    assert "not valid" in refusal_of(response)


def test_trusting_every_agent_of_the_account_needs_no_link(app, client, agent_id):
    add_integration(app, trust_all_agents=True)
    response = open_sidebar(client, sign(claims(user_id="31337")))
    assert response.status_code == 200
    assert card_refusal(client, card_token_of(response)).status_code == 200
    with app.app_context():
        event = db.session.scalars(select(LookupEvent).order_by(LookupEvent.id.desc())).first()
    assert event.agent_id is None and event.helpdesk_agent == f"{ORIGIN}/api/v2/users/31337.json"


def test_trusting_every_agent_still_refuses_a_disabled_agent(app, client, agent_id):
    add_integration(app, trust_all_agents=True)
    link_agent(app, agent_id, active=False)
    assert open_sidebar(client, sign(claims())).status_code == 403


def test_the_admin_downloads_the_app_package(app, client, integration_id, auth):
    add_agent(app, "admin@example.com", admin=True)
    auth.login("admin@example.com")
    response = client.get(f"/admin/integrations/{SLUG}/zendesk-app.zip")
    assert response.status_code == 200
    assert response.mimetype == "application/zip"
    manifest = json.loads(zipfile.ZipFile(io.BytesIO(response.data)).read("manifest.json"))
    assert manifest["signedUrls"] is True
    assert manifest["location"]["support"]["ticket_sidebar"]["url"] == f"http://localhost/embed/zendesk/{SLUG}"
    assert client.get("/admin/integrations/nope/zendesk-app.zip").status_code == 404


def test_an_agent_may_not_download_the_app_package(client, integration_id, auth, app):
    add_agent(app, "plain@example.com")
    auth.login("plain@example.com")
    assert client.get(f"/admin/integrations/{SLUG}/zendesk-app.zip").status_code == 403
