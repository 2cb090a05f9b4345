"""Cards inside a help desk's frame: Zendesk's ticket sidebar.

Nothing here leans on the dashboard's cookie (a third-party frame does not get it):
Zendesk signs the first load, and that page loads the card with a short-lived token of
ours in an ``Authorization`` header.
"""
from dashboard.embed import routes  # noqa: F401  (adds its routes to bp)
from dashboard.embed.blueprint import bp

__all__ = ["bp"]
