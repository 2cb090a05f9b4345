"""The visitor card for help desks that call us: Intercom's Inbox app (Canvas Kit) and
the generic JSON card. No session cookie, no CSRF token, no login redirect: each request
is authenticated by what the help desk signs (dashboard.integrations)."""
from dashboard.helpdesk.routes import bp

__all__ = ["bp"]
