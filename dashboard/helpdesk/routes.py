"""Intercom's initialize and submit requests, and the generic JSON card.

Every answer is JSON; every refusal is a 4xx with a sentence in ``error``. Nothing of a
secret, a signature or a visitor ID is logged (the request log names the route's rule,
not its URL, and never headers or query strings: dashboard.requestlog).
"""
from __future__ import annotations

import json
from datetime import datetime, timezone
from typing import Any

from flask import Blueprint, Response, current_app, jsonify, request
from sqlalchemy import select

from dashboard import cards
from dashboard.extensions import db
from dashboard.integrations import KINDS, signed_by_caller
from dashboard.integrations.agents import agent_for_email
from dashboard.integrations.secrets import accepted_secrets
from dashboard.integrations.signatures import INTERCOM_SIGNATURE_HEADER, SECRET_HEADER, body_signed, secret_matches
from dashboard.models import Agent, Integration
from dashboard.timeline import parse_moment

bp = Blueprint("helpdesk", __name__, url_prefix="/integrations")

# Intercom's requests are a few kilobytes; a contact's custom attributes can add some.
MAX_BODY_BYTES = 1024 * 1024
# A secret put in the URL lands in proxies' and help desks' logs: refused, not read.
URL_SECRET_NAMES = {"secret", "token", "key", "apikey", "api_key"}


class Refusal(Exception):
    """A request we do not answer with a card: its status and the sentence that says why."""

    def __init__(self, status: int, sentence: str, *, canvas: bool = False) -> None:
        super().__init__(sentence)
        self.status = status
        self.sentence = sentence
        self.canvas = canvas


@bp.errorhandler(Refusal)
def refused(refusal: Refusal) -> Response:
    body: dict[str, Any] = {"error": refusal.sentence}
    if refusal.canvas:  # Intercom shows an agent the canvas; the status tells its logs
        body.update(cards.message_canvas(refusal.sentence))
    return no_store(jsonify(body), refusal.status)


def no_store(response: Response, status: int = 200) -> Response:
    """A card shows customer data: no cache may keep it."""
    response.status_code = status
    response.headers["Cache-Control"] = "no-store"
    return response


def integration_or_refuse(slug: str, kind: str) -> Integration:
    integration = db.session.scalars(select(Integration).where(Integration.slug == slug)).first()
    if integration is None or integration.kind != kind:
        raise Refusal(404, f"There is no {KINDS[kind]} integration at this address. Check the URL under Admin → Integrations.")
    return integration


def secrets_or_refuse(integration: Integration) -> list[str]:
    secrets = accepted_secrets(integration, current_app.extensions["key_box"])
    if not secrets:
        raise Refusal(
            503,
            "This integration's secret cannot be read (it was stored under another SECRET_KEY or "
            "DASHBOARD_ENCRYPTION_KEY). An admin must enter it again under Admin → Integrations.",
        )
    return secrets


def base_url() -> str:
    return request.host_url


# --- Intercom ---------------------------------------------------------------------------


def intercom_payload(integration: Integration) -> dict[str, Any]:
    """The request's JSON, once its raw body's signature is checked."""
    if (request.content_length or 0) > MAX_BODY_BYTES:
        raise Refusal(413, "The request body is larger than an Intercom request can be.")
    body = request.get_data(cache=False)
    if len(body) > MAX_BODY_BYTES:
        raise Refusal(413, "The request body is larger than an Intercom request can be.")
    signature = request.headers.get(INTERCOM_SIGNATURE_HEADER)
    if not signature:
        raise Refusal(401, f"The request has no {INTERCOM_SIGNATURE_HEADER} header: only Intercom, signing with the app's client secret, may ask for a card.")
    if not body_signed(body, signature, secrets_or_refuse(integration)):
        raise Refusal(
            401,
            f"The {INTERCOM_SIGNATURE_HEADER} header does not match the body: the request was altered, or the "
            "client secret stored for this integration is not the Intercom app's. An admin can check it under Admin → Integrations.",
        )
    try:
        payload = json.loads(body)
    except ValueError:
        raise Refusal(400, "The request body is not JSON.") from None
    if not isinstance(payload, dict):
        raise Refusal(400, "The request body is not a JSON object.")
    return payload


def _object(payload: dict[str, Any], key: str) -> dict[str, Any]:
    value = payload.get(key)
    return value if isinstance(value, dict) else {}


def _text(value: Any) -> str | None:
    if isinstance(value, bool) or value is None:
        return None
    if isinstance(value, (str, int, float)):
        return str(value).strip() or None
    return None


def conversation_moment(conversation: dict[str, Any]) -> datetime | None:
    """When the conversation started (Intercom sends Unix seconds)."""
    created = conversation.get("created_at")
    if isinstance(created, (int, float)) and not isinstance(created, bool):
        try:
            return datetime.fromtimestamp(created, tz=timezone.utc)
        except (OverflowError, OSError, ValueError):
            return None
    return parse_moment(_text(created))


def intercom_card(slug: str, *, submitted: bool) -> Response:
    """The canvas for an initialize request, or a submit one (its "Refresh" button asks
    PostMetric afresh)."""
    integration = integration_or_refuse(slug, "intercom")
    payload = intercom_payload(integration)
    refresh = submitted and payload.get("component_id") == "refresh"
    email = _text(_object(payload, "admin").get("email"))
    agent = agent_for_email(email)
    if agent is None:
        raise Refusal(403, cards.no_agent_sentence(integration), canvas=True)
    attributes = _object(_object(payload, "contact"), "custom_attributes")
    visitor_id = _text(attributes.get(integration.visitor_field))
    conversation = _object(payload, "conversation")
    ticket = _text(conversation.get("id"))
    result = cards.look_up_card(
        integration,
        agent,
        visitor_id or "",
        at=conversation_moment(conversation),
        ticket=ticket,
        helpdesk_agent_ref=email or "",
        base_url=base_url(),
        refresh=refresh,
    )
    if result.card is None:
        if result.status == 403:
            raise Refusal(403, result.message, canvas=True)
        # Intercom draws only a 200's canvas: a contact without a visitor ID, or a look-up
        # that could not be recorded, is said on the canvas itself.
        return no_store(jsonify(cards.message_canvas(result.message)))
    return no_store(jsonify(cards.card_canvas(result.card, agent.timezone)))


@bp.post("/intercom/<slug>/initialize")
@signed_by_caller
def intercom_initialize(slug: str):
    """Intercom opens a conversation: the visitor card as a canvas."""
    return intercom_card(slug, submitted=False)


@bp.post("/intercom/<slug>/submit")
@signed_by_caller
def intercom_submit(slug: str):
    """The canvas's "Refresh" button: the card again, asked of PostMetric afresh."""
    return intercom_card(slug, submitted=True)


# --- the generic JSON card --------------------------------------------------------------


@bp.get("/<slug>/card")
@signed_by_caller
def json_card(slug: str):
    """The card as JSON, for a help desk that sends the integration's secret in a header."""
    integration = integration_or_refuse(slug, "json")
    if any(name.lower() in URL_SECRET_NAMES for name in request.args):
        raise Refusal(400, f"Send the secret in the {SECRET_HEADER} header only, never in the URL; remove it from the URL and rotate it.")
    given = request.headers.get(SECRET_HEADER)
    if not given:
        raise Refusal(401, f"The request has no {SECRET_HEADER} header: send the integration's secret in it (never in the URL).")
    if not secret_matches(given, secrets_or_refuse(integration)):
        raise Refusal(401, f"The {SECRET_HEADER} header does not hold this integration's secret. An admin can check it under Admin → Integrations.")
    email = request.args.get("agent", "")
    agent: Agent | None = agent_for_email(email)
    at = request.args.get("at")
    moment = parse_moment(at)
    if at and moment is None:
        raise Refusal(400, "“at” must be a moment such as 2024-01-31T14:22:00Z or Unix seconds.")
    result = cards.look_up_card(
        integration,
        agent,
        request.args.get("visitorId", ""),
        at=moment,
        ticket=(request.args.get("ticket") or "").strip()[:200] or None,
        helpdesk_agent_ref=email.strip()[:320],
        base_url=base_url(),
    )
    if result.card is None:
        raise Refusal(result.status, result.message)
    return no_store(jsonify(cards.card_json(result.card)), result.status)
