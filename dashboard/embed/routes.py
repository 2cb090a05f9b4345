"""Zendesk's ticket sidebar: the signed first load, then the card."""
from __future__ import annotations

from flask import Response, current_app, render_template, request, url_for
from sqlalchemy import select

from dashboard import cards, zendesk
from dashboard.embed.blueprint import bp
from dashboard.extensions import db
from dashboard.integrations import signed_by_caller
from dashboard.integrations.agents import agent_for_zendesk
from dashboard.models import Integration
from dashboard.security import allow_framing_by
from dashboard.timeline import parse_moment

MAX_TICKET_LENGTH = 200


def zendesk_integration(slug: str) -> Integration | None:
    return db.session.scalar(select(Integration).where(Integration.slug == slug, Integration.kind == "zendesk"))


def frame_origin(integration: Integration) -> str:
    """The one origin that may frame this integration's pages: its Zendesk account's."""
    return current_app.extensions["settings"].zendesk_origin_for_tests or zendesk.zendesk_origin(integration.account)


def helpdesk_agent_ref(integration: Integration, user_id: str) -> str:
    """How the audit trail names the Zendesk agent: their user URL, as Zendesk signs it."""
    return f"{zendesk.zendesk_origin(integration.account)}/api/v2/users/{user_id}.json"


def visitor_field_path(integration: Integration) -> str:
    """The ZAF path of the ticket field holding the visitor ID (its number, however entered)."""
    field = integration.visitor_field.strip().removeprefix("ticket.customField:").removeprefix("custom_field_")
    return f"ticket.customField:custom_field_{field}"


def framed(response: Response, integration: Integration) -> Response:
    response.headers["Cache-Control"] = "no-store"
    return allow_framing_by(response, frame_origin(integration))


def refusal_page(sentence: str, status: int, integration: Integration | None = None) -> Response:
    """A page that says why the card is not shown, inside the sidebar when it can be."""
    response = Response(render_template("embed/zendesk_refused.html", sentence=sentence), status=status)
    return framed(response, integration) if integration is not None else response


def refusal_fragment(sentence: str, status: int, integration: Integration) -> Response:
    response = Response(render_template("embed/zendesk_card.html", sentence=sentence), status=status)
    return framed(response, integration)


NO_INTEGRATION = "There is no Zendesk integration at this address: ask an admin for the app package of a current one."


@bp.post("/zendesk/<slug>")
@signed_by_caller
def zendesk_sidebar(slug: str) -> Response:
    """The sidebar's first load: Zendesk's signed token checked, the page that asks
    Zendesk for the ticket's fields and then loads the card."""
    integration = zendesk_integration(slug)
    if integration is None:
        return refusal_page(NO_INTEGRATION, 404)
    origin = request.args.get("origin", "")
    if origin != frame_origin(integration):
        return refusal_page(
            f"This page opens only in Zendesk's ticket sidebar at {frame_origin(integration)}, through the Visitor Lookup app.",
            400,
            integration,
        )
    try:
        sign_in = zendesk.verify_sidebar_token(
            request.form.get("token"),
            public_key_pem=integration.public_key_pem,
            subdomain=integration.account,
            installation_id=integration.installation_id,
        )
    except zendesk.ZendeskRefused as refused:
        return refusal_page(str(refused), refused.status, integration)
    agent = agent_for_zendesk(integration, sign_in.user_id)
    if not cards.may_see_card(integration, agent, helpdesk_agent_ref(integration, sign_in.user_id)):
        return refusal_page(cards.no_agent_sentence(integration), 403, integration)
    page = render_template(
        "embed/zendesk.html",
        integration=integration,
        field_path=visitor_field_path(integration),
        card_url=url_for("embed.zendesk_card", slug=slug),
        card_token=zendesk.issue_card_token(current_app.config["SECRET_KEY"], integration.id, sign_in.user_id),
    )
    return framed(Response(page), integration)


@bp.get("/zendesk/<slug>/card")
@signed_by_caller
def zendesk_card(slug: str) -> Response:
    """The card of the ticket's visitor, for the sidebar page's token (never a cookie)."""
    integration = zendesk_integration(slug)
    if integration is None:
        return Response(render_template("embed/zendesk_card.html", sentence=NO_INTEGRATION), status=404)
    try:
        user_id = zendesk.read_card_token(
            current_app.config["SECRET_KEY"], request.headers.get("Authorization"), integration_id=integration.id
        )
    except zendesk.ZendeskRefused as refused:
        return refusal_fragment(str(refused), refused.status, integration)
    agent = agent_for_zendesk(integration, user_id)
    ticket = request.args.get("ticket", "").strip()[:MAX_TICKET_LENGTH] or None
    result = cards.look_up_card(
        integration,
        agent,
        request.args.get("visitorId", ""),
        at=parse_moment(request.args.get("at")),
        ticket=ticket,
        helpdesk_agent_ref=helpdesk_agent_ref(integration, user_id),
        base_url=request.host_url,
    )
    if result.card is None:  # look_up_card decides who may see it (a disabled agent may not)
        return refusal_fragment(result.message, result.status, integration)
    zone = agent.timezone if agent is not None else "UTC"
    return framed(Response(cards.card_html(result.card, zone=zone), status=result.status), integration)
