"""Which dashboard agent a help desk's agent is: a card is shown only to an active one
(in the request's database session, dashboard.extensions.db)."""
from __future__ import annotations

import re

from sqlalchemy import select

from dashboard.extensions import db
from dashboard.models import Agent, Integration

# A Zendesk user's reference in a signed token's ``sub``: .../api/v2/users/123.json, or the ID.
_ZENDESK_USER = re.compile(r"(?:/users/)?(\d{1,20})(?:\.json)?/?$")


def agent_for_email(email: str | None) -> Agent | None:
    """The active agent with this e-mail address (Intercom signs its admin's address)."""
    if not email or not email.strip():
        return None
    agent = db.session.scalars(select(Agent).where(Agent.email == Agent.normalise_email(email))).first()
    return agent if agent is not None and agent.active else None


def zendesk_user_id_from(reference: str | None) -> str | None:
    """The Zendesk user ID in a token's ``sub`` (a user URL) or given alone."""
    match = _ZENDESK_USER.search((reference or "").strip())
    return match.group(1) if match else None


def zendesk_user_key(account: str, zendesk_user_id: str) -> str:
    """How an agent's Zendesk user is stored (Agent.zendesk_user_id): ``acme/3940581``.
    A Zendesk user ID means something only within its account, so the account is part of it."""
    return f"{account.strip().lower()}/{zendesk_user_id.strip()}"


def agent_for_zendesk(integration: Integration, zendesk_user_id: str | None) -> Agent | None:
    """The active agent linked to this Zendesk user of the integration's account, or None.

    An integration that trusts every agent of its Zendesk account still shows no card to
    a user linked to a disabled agent: see ``zendesk_user_disabled``."""
    agent = _linked_agent(integration, zendesk_user_id)
    return agent if agent is not None and agent.active else None


def zendesk_user_disabled(integration: Integration, zendesk_user_id: str | None) -> bool:
    """Whether this Zendesk user (of the integration's account) is linked to a disabled agent."""
    agent = _linked_agent(integration, zendesk_user_id)
    return agent is not None and not agent.active


def _linked_agent(integration: Integration, zendesk_user_id: str | None) -> Agent | None:
    user_id = zendesk_user_id_from(zendesk_user_id)
    if user_id is None or integration.kind != "zendesk":
        return None
    key = zendesk_user_key(integration.account, user_id)
    return db.session.scalars(select(Agent).where(Agent.zendesk_user_id == key)).first()
