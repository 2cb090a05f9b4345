"""Searching for a visitor and the visitor view."""
from dashboard.visitors.routes import bp

__all__ = ["bp"]
