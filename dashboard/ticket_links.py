"""Ticket URL templates: where a ticket reference leads in a site's ticket system.

A template such as ``https://acme.zendesk.com/agent/tickets/{ticket}`` belongs to a site
(an admin's site in the database, or the environment's ``POSTMETRIC_TICKET_URL_TEMPLATE``);
the ticket reference (written into look-up URLs by anyone) is URL-encoded into the
``{ticket}`` place, so it can neither leave the path segment nor change the host.
"""
from __future__ import annotations

from urllib.parse import quote, urlsplit

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


