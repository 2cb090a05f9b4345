"""The visitor card in Intercom (Canvas Kit) and for help desks that send a static secret
header: signatures, who may see it, the card itself, the audit trail, and refusals that
are 4xx with a sentence. Against the bundled PostMetric stand-in on a loopback port."""
from __future__ import annotations

import json
import logging
from datetime import datetime, timezone

import pytest
from sqlalchemy import select, update

from dashboard import cards
from dashboard.demo.data import HOSTILE_VISITOR_ID, LARGE_VISITOR_ID, SIGNALS_VISITOR_ID
from dashboard.extensions import db
from dashboard.integrations.secrets import store_secret
from dashboard.integrations.signatures import body_signature
from dashboard.models import Agent, Integration, LookupEvent
from tests.conftest import AGENT_EMAIL, add_agent
from tests.support.helpdesk import (
    CONVERSATION_STARTED,
    INTERCOM_SECRET,
    JSON_SECRET,
    add_integration,
    intercom_payload,
    signed,
)
from tests.support.html import soup

INITIALIZE = "/integrations/intercom/inbox/initialize"
SUBMIT = "/integrations/intercom/inbox/submit"
CARD = "/integrations/desk/card"


@pytest.fixture
def helpdesk_app(app):
    add_agent(app)
    add_integration(app, "intercom", "inbox", secret=INTERCOM_SECRET, visitor_field="visitorId")
    add_integration(app, "json", "desk", secret=JSON_SECRET)
    return app


@pytest.fixture
def caller(helpdesk_app):
    """A client with no cookie of ours, as a help desk's server is."""
    return helpdesk_app.test_client(use_cookies=False)


def events(app) -> list[LookupEvent]:
    with app.app_context():
        return list(db.session.scalars(select(LookupEvent).order_by(LookupEvent.id)))


def canvas_texts(body: dict) -> str:
    return json.dumps(body["canvas"]["content"], ensure_ascii=False)


def post_intercom(caller, payload: dict, url: str = INITIALIZE, secret: str = INTERCOM_SECRET):
    body, headers = signed(payload, secret)
    return caller.post(url, data=body, headers=headers)


# -- Intercom ------------------------------------------------------------------------------


def test_a_signed_initialize_answers_the_card_as_a_canvas_and_records_it(caller, helpdesk_app):
    response = post_intercom(caller, intercom_payload(AGENT_EMAIL, SIGNALS_VISITOR_ID))
    assert response.status_code == 200, response.text
    assert response.headers["Cache-Control"] == "no-store"
    components = response.json["canvas"]["content"]["components"]
    texts = canvas_texts(response.json)
    assert "Last pages before the conversation" in texts and "What stands out" in texts
    url = next(c["action"]["url"] for c in components if c.get("id") == "open-full-view")
    assert url.startswith("http://localhost/visitor?visitorId=visitor_signals")
    assert "ticket=147" in url and "at=2024-02-11T19" in url
    (event,) = events(helpdesk_app)
    assert (event.visitor_id, event.action, event.outcome, event.ticket) == (SIGNALS_VISITOR_ID, "card", "ok", "147")
    assert (event.integration, event.helpdesk_agent) == ("inbox", AGENT_EMAIL)
    with helpdesk_app.app_context():
        assert event.agent_id == db.session.scalars(select(Agent.id).where(Agent.email == AGENT_EMAIL)).one()


def test_the_card_lists_only_pages_before_the_conversation_started(caller):
    moment = datetime.fromtimestamp(CONVERSATION_STARTED, tz=timezone.utc)
    response = post_intercom(caller, intercom_payload(AGENT_EMAIL, SIGNALS_VISITOR_ID))
    pages = next(c for c in reversed(response.json["canvas"]["content"]["components"]) if c["type"] == "list")
    times = [item["tertiary_text"] for item in pages["items"]]
    assert times and all(time <= moment.strftime("%Y-%m-%d %H:%M") for time in times)


def test_refresh_asks_postmetric_again(caller, fake_api):
    post_intercom(caller, intercom_payload(AGENT_EMAIL, "visitor_123"))
    asked = fake_api.stats.calls
    post_intercom(caller, intercom_payload(AGENT_EMAIL, "visitor_123", component_id="other"), url=SUBMIT)
    assert fake_api.stats.calls == asked  # a submit of another component: the cache
    response = post_intercom(caller, intercom_payload(AGENT_EMAIL, "visitor_123", component_id="refresh"), url=SUBMIT)
    assert response.status_code == 200 and "Last seen" in canvas_texts(response.json)
    assert fake_api.stats.calls == asked + 1


@pytest.mark.parametrize(
    "headers, sentence",
    [
        ({}, "has no X-Body-Signature header"),
        ({"X-Body-Signature": "0" * 64}, "does not match the body"),
        ({"X-Body-Signature": ""}, "has no X-Body-Signature header"),
    ],
)
def test_an_unsigned_or_wrongly_signed_request_is_refused(caller, helpdesk_app, headers, sentence):
    body = json.dumps(intercom_payload(AGENT_EMAIL, "visitor_123")).encode()
    response = caller.post(INITIALIZE, data=body, headers={"Content-Type": "application/json", **headers})
    assert response.status_code == 401
    assert sentence in response.json["error"]
    assert events(helpdesk_app) == []


def test_a_signature_of_another_body_or_secret_is_refused(caller, helpdesk_app):
    payload = intercom_payload(AGENT_EMAIL, "visitor_123")
    _, headers = signed(payload)
    altered = json.dumps(intercom_payload(AGENT_EMAIL, "visitor_large")).encode()
    assert caller.post(INITIALIZE, data=altered, headers=headers).status_code == 401
    assert post_intercom(caller, payload, secret="another-secret-entirely").status_code == 401
    assert events(helpdesk_app) == []


def test_during_a_rotation_both_secrets_are_accepted_and_after_it_only_the_new(caller, helpdesk_app):
    with helpdesk_app.app_context():
        integration = db.session.scalars(select(Integration).where(Integration.slug == "inbox")).one()
        store_secret(integration, "the-new-client-secret-2024", helpdesk_app.extensions["key_box"], rotate=True)
        db.session.commit()
    payload = intercom_payload(AGENT_EMAIL, "visitor_123")
    assert post_intercom(caller, payload, secret=INTERCOM_SECRET).status_code == 200
    assert post_intercom(caller, payload, secret="the-new-client-secret-2024").status_code == 200
    with helpdesk_app.app_context():
        integration = db.session.scalars(select(Integration).where(Integration.slug == "inbox")).one()
        store_secret(integration, "the-new-client-secret-2024", helpdesk_app.extensions["key_box"])
        db.session.commit()
    assert post_intercom(caller, payload, secret=INTERCOM_SECRET).status_code == 401
    assert post_intercom(caller, payload, secret="the-new-client-secret-2024").status_code == 200


@pytest.mark.parametrize("email", ["stranger@example.com", "", None])
def test_an_admin_e_mail_that_is_no_agent_of_ours_sees_no_card(caller, helpdesk_app, email):
    response = post_intercom(caller, intercom_payload(email, "visitor_123"))
    assert response.status_code == 403
    assert "not an active Visitor Lookup agent" in response.json["error"]
    assert "not an active Visitor Lookup agent" in canvas_texts(response.json)
    assert "Last seen" not in canvas_texts(response.json)
    assert events(helpdesk_app) == []


def test_a_disabled_agent_sees_no_card(caller, helpdesk_app):
    with helpdesk_app.app_context():
        db.session.execute(update(Agent).where(Agent.email == AGENT_EMAIL).values(active=False))
        db.session.commit()
    response = post_intercom(caller, intercom_payload(AGENT_EMAIL.upper(), "visitor_123"))
    assert response.status_code == 403 and "re-enable" in response.json["error"]
    assert events(helpdesk_app) == []


def test_the_e_mail_matches_whatever_its_case(caller):
    assert post_intercom(caller, intercom_payload(AGENT_EMAIL.upper(), "visitor_123")).status_code == 200


def test_a_contact_without_the_attribute_gets_a_canvas_that_says_so(caller, helpdesk_app):
    response = post_intercom(caller, intercom_payload(AGENT_EMAIL, "visitor_123", attribute="somethingElse"))
    assert response.status_code == 200
    assert "no usable visitor ID" in canvas_texts(response.json) and "visitorId" in canvas_texts(response.json)
    assert events(helpdesk_app) == []


def test_an_unknown_visitor_gets_a_card_that_says_so(caller, helpdesk_app):
    response = post_intercom(caller, intercom_payload(AGENT_EMAIL, "visitor_unknown"))
    assert response.status_code == 200
    assert "PostMetric has no visitor with this ID" in canvas_texts(response.json)
    assert [(e.visitor_id, e.outcome) for e in events(helpdesk_app)] == [("visitor_unknown", "unknown")]


def test_an_upstream_failure_is_said_on_the_canvas_and_recorded(caller, helpdesk_app):
    response = post_intercom(caller, intercom_payload(AGENT_EMAIL, "fail-500"))
    assert response.status_code == 200
    texts = canvas_texts(response.json)
    assert "Open the full view" in texts and "Last seen" not in texts
    (event,) = events(helpdesk_app)
    assert event.outcome not in {"ok", "unknown"}


@pytest.mark.parametrize("visitor_id", [LARGE_VISITOR_ID, HOSTILE_VISITOR_ID])
def test_the_canvas_stays_under_64_kb_for_big_and_hostile_visitors(caller, visitor_id):
    response = post_intercom(caller, intercom_payload(AGENT_EMAIL, visitor_id, created_at=1893456000))
    assert response.status_code == 200
    size = len(json.dumps(response.json["canvas"]["content"], ensure_ascii=False).encode())
    assert 1000 < size < cards.CANVAS_LIMIT
    assert "Last seen" in canvas_texts(response.json)


@pytest.mark.parametrize(
    "url, status", [("/integrations/intercom/nope/initialize", 404), ("/integrations/intercom/desk/initialize", 404)]
)
def test_an_unknown_or_other_kind_of_integration_is_404_with_a_sentence(caller, url, status):
    response = post_intercom(caller, intercom_payload(AGENT_EMAIL, "visitor_123"), url=url)
    assert response.status_code == status and "no Intercom integration" in response.json["error"]


@pytest.mark.parametrize("body", [b"not json", b"[1, 2]"])
def test_a_signed_body_that_is_no_json_object_is_400(caller, body):
    headers = {"Content-Type": "application/json", "X-Body-Signature": body_signature(body, INTERCOM_SECRET)}
    response = caller.post(INITIALIZE, data=body, headers=headers)
    assert response.status_code == 400 and "JSON" in response.json["error"]


def test_no_login_redirect_and_no_csrf_token_is_asked_for(caller):
    """These routes are reached without our cookie: the signature is the authentication."""
    response = post_intercom(caller, intercom_payload(AGENT_EMAIL, "visitor_123"))
    assert response.status_code == 200 and "Set-Cookie" not in response.headers


# -- the generic JSON card -------------------------------------------------------------------


def card(caller, query: str, secret: str | None = JSON_SECRET):
    headers = {"X-Visitor-Lookup-Secret": secret} if secret is not None else {}
    return caller.get(f"{CARD}?{query}", headers=headers)


def test_the_json_card_with_the_right_secret(caller, helpdesk_app):
    response = card(caller, f"visitorId={SIGNALS_VISITOR_ID}&at=2024-02-11T19:10:00Z&ticket=FD-12&agent={AGENT_EMAIL}")
    assert response.status_code == 200, response.text
    body = response.json
    assert body["visitorId"] == SIGNALS_VISITOR_ID and body["found"] is True
    assert body["ticketMoment"] == "2024-02-11T19:10:00.000Z"
    assert body["signals"] and body["lastPages"]
    assert all(page["time"] <= "2024-02-11T19:10:00.000Z" for page in body["lastPages"])
    assert "ticket=FD-12" in body["fullViewUrl"]
    assert response.headers["Cache-Control"] == "no-store"
    (event,) = events(helpdesk_app)
    assert (event.integration, event.helpdesk_agent, event.ticket, event.action) == ("desk", AGENT_EMAIL, "FD-12", "card")


@pytest.mark.parametrize("secret, sentence", [(None, "has no X-Visitor-Lookup-Secret header"), ("wrong", "does not hold"), ("", "has no")])
def test_the_json_card_without_the_right_secret_is_401(caller, helpdesk_app, secret, sentence):
    response = card(caller, f"visitorId=visitor_123&agent={AGENT_EMAIL}", secret)
    assert response.status_code == 401 and sentence in response.json["error"]
    assert events(helpdesk_app) == []


def test_a_secret_in_the_url_is_refused(caller, helpdesk_app):
    response = card(caller, f"visitorId=visitor_123&agent={AGENT_EMAIL}&secret={JSON_SECRET}")
    assert response.status_code == 400 and "never in the URL" in response.json["error"]
    assert events(helpdesk_app) == []


@pytest.mark.parametrize(
    "query, status, sentence",
    [
        ("visitorId=visitor_123", 403, "not an active Visitor Lookup agent"),
        (f"visitorId=&agent={AGENT_EMAIL}", 400, "no usable visitor ID"),
        (f"visitorId=visitor_123&agent={AGENT_EMAIL}&at=yesterday", 400, "“at” must be a moment"),
    ],
)
def test_the_json_card_refuses_with_a_sentence(caller, query, status, sentence):
    response = card(caller, query)
    assert response.status_code == status and sentence in response.json["error"]


def test_the_json_card_of_an_upstream_failure_has_its_status_and_sentence(caller):
    response = card(caller, f"visitorId=fail-500&agent={AGENT_EMAIL}")
    assert response.status_code == 502
    assert response.json["found"] is False and response.json["error"]


def test_the_json_card_route_answers_only_json_integrations(caller):
    response = caller.get("/integrations/inbox/card?visitorId=visitor_123", headers={"X-Visitor-Lookup-Secret": INTERCOM_SECRET})
    assert response.status_code == 404 and "no Generic JSON integration" in response.json["error"]


# -- the audit trail fails closed ------------------------------------------------------------


def test_a_card_whose_audit_row_cannot_be_written_is_not_shown(caller, helpdesk_app, monkeypatch):
    from dashboard import audit

    def refuse(*args, **kwargs):
        raise RuntimeError("disk full")

    monkeypatch.setattr(audit, "record_event", refuse)
    response = card(caller, f"visitorId=visitor_123&agent={AGENT_EMAIL}")
    assert response.status_code == 503 and "could not be recorded" in response.json["error"]
    response = post_intercom(caller, intercom_payload(AGENT_EMAIL, "visitor_123"))
    assert "Last seen" not in canvas_texts(response.json) and "could not be recorded" in canvas_texts(response.json)


# -- nothing of a secret in the logs ---------------------------------------------------------


def test_no_secret_signature_or_token_reaches_the_logs(caller, caplog):
    payload = intercom_payload(AGENT_EMAIL, "visitor_123")
    body, headers = signed(payload)
    with caplog.at_level(logging.DEBUG):
        caller.post(INITIALIZE, data=body, headers=headers)
        caller.post(INITIALIZE, data=body, headers={**headers, "X-Body-Signature": "f" * 64})
        card(caller, f"visitorId=visitor_123&agent={AGENT_EMAIL}")
        card(caller, f"visitorId=visitor_123&agent={AGENT_EMAIL}", "wrong-secret-value")
    logged = "\n".join(record.getMessage() for record in caplog.records)
    for secret in (INTERCOM_SECRET, JSON_SECRET, headers["X-Body-Signature"], "wrong-secret-value"):
        assert secret not in logged


# -- the HTML render -------------------------------------------------------------------------


def test_the_html_card_escapes_and_shows_the_same_card(helpdesk_app):
    card_value = cards.Card(
        visitor_id="<b>v</b>",
        last_seen=datetime(2024, 2, 11, 19, 0, tzinfo=timezone.utc),
        sessions=3,
        page_views=1200,
        signals=(("error_page", "An error page: <script>alert(1)</script>"),),
        last_pages=(cards.CardPage(datetime(2024, 2, 11, 19, 0, tzinfo=timezone.utc), "<img src=x>", "/x"),),
        full_view_url="http://localhost/visitor?visitorId=v",
        moment=datetime(2024, 2, 11, 19, 10, tzinfo=timezone.utc),
    )
    with helpdesk_app.test_request_context():
        html = cards.card_html(card_value, "Europe/Berlin")
    page = soup(html)
    assert page.select_one("script") is None and page.select_one("img") is None and page.select_one("b") is None
    assert page.select_one("#visitor-card-heading").get_text(strip=True) == "<b>v</b>"
    assert [li.get_text(strip=True) for li in page.select(".visitor-card-signals li")] == ["An error page: <script>alert(1)</script>"]
    assert "1,200" in page.get_text() and "20:00" in page.get_text()  # Berlin is UTC+1 in February
    assert page.select_one("a.visitor-card-link")["href"] == card_value.full_view_url
