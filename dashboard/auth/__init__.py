"""Logging in and out, and the login requirement on every page."""
from dashboard.auth.routes import bp, init_app

__all__ = ["bp", "init_app"]
