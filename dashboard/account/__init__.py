"""The agent's own settings: the time zone every time on the dashboard is shown in."""
from dashboard.account.routes import bp

__all__ = ["bp"]
