"""Tickets a visitor was looked up for before, linked into the site's ticket system.

An admin gives each site a ticket URL template such as
``https://acme.zendesk.com/agent/tickets/{ticket}``; the ticket reference (written into
look-up URLs by anyone) is URL-encoded into the ``{ticket}`` place, so it can neither
leave the path segment nor change the host.
"""
from __future__ import annotations

from dataclasses import dataclass
from urllib.parse import quote, urlsplit

from sqlalchemy import select
from sqlalchemy.orm import Session

from dashboard.audit import TicketLookup, ticket_history
from dashboard.models import Site

PLACEHOLDER = "{ticket}"
EXAMPLE_TEMPLATE = "https://acme.zendesk.com/agent/tickets/{ticket}"
MAX_TEMPLATE_LENGTH = 500


class InvalidTemplate(ValueError):
    """A ticket URL template that cannot be used, with the sentence to show."""


def clean_template(text: str | None) -> str | None:
    """The template trimmed (None when empty), or InvalidTemplate saying what is wrong."""
    template = (text or "").strip()
    if not template:
        return None
    parts = urlsplit(template)
    if parts.scheme not in {"http", "https"} or not parts.netloc or PLACEHOLDER in parts.netloc:
        raise InvalidTemplate(f"The ticket URL template must be an http:// or https:// URL such as {EXAMPLE_TEMPLATE}.")
    if PLACEHOLDER not in template:
        raise InvalidTemplate(f"The ticket URL template must contain {PLACEHOLDER} where the ticket number goes.")
    if len(template) > MAX_TEMPLATE_LENGTH or any(c.isspace() for c in template):
        raise InvalidTemplate(f"The ticket URL template must be one URL of at most {MAX_TEMPLATE_LENGTH} characters, without spaces.")
    return template


def ticket_url(template: str | None, ticket: str) -> str | None:
    """The ticket's address in the ticket system, or None without a template."""
    if not template:
        return None
    return template.replace(PLACEHOLDER, quote(ticket, safe=""))


@dataclass(frozen=True)
class SeenTicket:
    lookup: TicketLookup
    url: str | None


def seen_before(session: Session, site: str, visitor_id: str, current_ticket: str | None) -> list[SeenTicket]:
    """The visitor's earlier tickets on ``site`` (newest five, not the one on screen), linked
    when the site has a ticket URL template."""
    lookups = ticket_history(session, site, visitor_id, exclude_ticket=current_ticket)
    if not lookups:
        return []
    template = session.scalar(select(Site.ticket_url_template).where(Site.slug == site))
    return [SeenTicket(lookup, ticket_url(template, lookup.ticket)) for lookup in lookups]
