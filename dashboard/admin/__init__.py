"""Admin pages: agents, PostMetric sites, help-desk integrations and the audit trail. Admins only.

Every route of this blueprint is behind ``require_admin`` (admin/blueprint.py): an agent
gets 403 on every page and every POST, whatever route is added later.
"""
from dashboard.admin import agents, audit, integrations, sites  # noqa: F401  (they add their routes to bp)
from dashboard.admin import zendesk_package  # noqa: F401  (the Zendesk app's zip)
from dashboard.admin.blueprint import bp

__all__ = ["bp"]
