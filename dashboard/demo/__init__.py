"""The bundled PostMetric stand-in and its demo data (``dashboard demo``, ``dashboard fake-api``, tests)."""
from __future__ import annotations

from dashboard.demo.data import (
    DEMO_API_KEY,
    DEMO_VISITORS,
    EXAMPLE_VISITOR_ID,
    FAILURE_VISITORS,
    HOSTILE_VISITOR_ID,
    HUGE_TOTALS,
    HUGE_VISITOR_ID,
    LARGE_VISITOR_ID,
    LIVE_VISITOR_ID,
    ODD_VISITOR_ID,
    RETURNING_VISITOR_ID,
    UNKNOWN_VISITOR_ID,
    DemoVisitor,
    build_visitor_payload,
)
from dashboard.demo.fake_api import FakeApiServer, FakeApiStats, create_fake_api, serve, utcnow

__all__ = [
    "DEMO_API_KEY",
    "DEMO_VISITORS",
    "EXAMPLE_VISITOR_ID",
    "FAILURE_VISITORS",
    "HOSTILE_VISITOR_ID",
    "HUGE_TOTALS",
    "HUGE_VISITOR_ID",
    "LARGE_VISITOR_ID",
    "LIVE_VISITOR_ID",
    "ODD_VISITOR_ID",
    "RETURNING_VISITOR_ID",
    "UNKNOWN_VISITOR_ID",
    "DemoVisitor",
    "FakeApiServer",
    "FakeApiStats",
    "build_visitor_payload",
    "create_fake_api",
    "serve",
    "utcnow",
]
