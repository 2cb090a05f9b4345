"""Help-desk integrations: what the card routes share, with no Flask blueprint of their own.

- ``secrets``: an integration's secrets, encrypted at rest, and their rotation;
- ``signatures``: Intercom's body signature and the static secret header, checked in
  constant time;
- ``agents``: which dashboard agent a help desk's agent is.

The routes live in blueprints (dashboard.helpdesk for Intercom and the JSON card,
dashboard.embed for Zendesk); they mark their views with ``signed_by_caller``.
"""
from __future__ import annotations

from collections.abc import Callable
from typing import TypeVar

from dashboard.extensions import csrf

View = TypeVar("View", bound=Callable)

#: The attribute ``signed_by_caller`` sets; the login check (dashboard.auth) reads it.
SIGNED_BY_CALLER = "signed_by_caller"
KINDS = {"zendesk": "Zendesk", "intercom": "Intercom", "json": "Generic JSON"}


def signed_by_caller(view: View) -> View:
    """Mark a view that the help desk authenticates with what it signs (a signature, a
    signed token or a static secret header), never with our session cookie: no login
    redirect, and no CSRF token (a CSRF token protects a cookie-authenticated form; these
    requests carry no cookie of ours, and a forged one cannot carry the signature).
    The view answers 401/403 itself, with a sentence."""
    setattr(view, SIGNED_BY_CALLER, True)
    return csrf.exempt(view)
