"""Tickets a visitor was looked up for before, linked into the site's ticket system
(see :mod:`dashboard.ticket_links`)."""
from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy.orm import Session

from dashboard.audit import TicketLookup, ticket_history
from dashboard.sites import SiteRef
from dashboard.ticket_links import ticket_url


@dataclass(frozen=True)
class SeenTicket:
    lookup: TicketLookup
    url: str | None


def seen_before(session: Session, site: SiteRef, visitor_id: str, current_ticket: str | None) -> list[SeenTicket]:
    """The visitor's earlier tickets on ``site`` (newest five, not the one on screen), linked
    when the site has a ticket URL template."""
    lookups = ticket_history(session, site.slug, visitor_id, exclude_ticket=current_ticket)
    return [SeenTicket(lookup, ticket_url(site.ticket_url_template, lookup.ticket)) for lookup in lookups]
