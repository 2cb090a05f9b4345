"""Numbers an operator can alert on, in Prometheus' format at ``GET /metrics``.

``/metrics`` exists only when METRICS_TOKEN is set, and answers only a request that
sends it as a bearer token. With several server workers ``dashboard serve`` points
PROMETHEUS_MULTIPROC_DIR at a folder of its own, where every worker writes its
numbers, and the scrape adds them up (prometheus-client's multiprocess mode), so any
worker answers for all of them.
"""
from __future__ import annotations

import hmac
import os
from datetime import timedelta
from typing import Callable

from flask import Flask, Response, request
from prometheus_client import (
    CONTENT_TYPE_LATEST,
    REGISTRY,
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    generate_latest,
    multiprocess,
)
from sqlalchemy.exc import SQLAlchemyError

from dashboard.probes import as_nobody

MULTIPROCESS_ENV = "PROMETHEUS_MULTIPROC_DIR"
# Agents who looked a visitor up within this window count as signed in (sessions are
# signed cookies, not stored, so the audit trail is the shared record of who is working).
SIGNED_IN_WINDOW = timedelta(minutes=15)

REQUEST_SECONDS = Histogram(
    "dashboard_request_seconds", "Time to answer a request, by route rule and status.", ["route", "status"]
)
UPSTREAM_CALLS = Counter(
    "dashboard_upstream_calls_total", "HTTP calls to PostMetric, by site and outcome (ok or the error's kind).", ["site", "outcome"]
)
UPSTREAM_SECONDS = Histogram("dashboard_upstream_seconds", "Time of one HTTP call to PostMetric, by site.", ["site"])
UPSTREAM_RATE_LIMITED = Counter("dashboard_upstream_rate_limited_total", "429 answers from PostMetric, by site.", ["site"])
BUDGET_LEFT = Gauge(
    "dashboard_upstream_budget_left",
    "Requests this minute's budget still allows, by site (the workers' shares added up).",
    ["site"],
    multiprocess_mode="livesum",
)
CACHE_LOOKUPS = Counter(
    "dashboard_cache_lookups_total", "Visitor look-ups by cache outcome: hit, miss, coalesced or stale.", ["outcome"]
)
AUDIT_WRITE_FAILURES = Counter(
    "dashboard_audit_write_failures_total", "Audit rows that could not be written (the look-up was not shown).", ["action"]
)
AGENTS_SIGNED_IN = Gauge(
    "dashboard_agents_signed_in",
    "Agents who looked a visitor up in the last 15 minutes.",
    multiprocess_mode="mostrecent",
)


def upstream_observer(site: str) -> Callable[[str, float, int | None], None]:
    """What the PostMetric client of ``site`` reports after each call: outcome, seconds, status."""

    def observe(outcome: str, seconds: float, status: int | None) -> None:
        UPSTREAM_CALLS.labels(site, outcome).inc()
        UPSTREAM_SECONDS.labels(site).observe(seconds)
        if status == 429:
            UPSTREAM_RATE_LIMITED.labels(site).inc()

    return observe


def budget_left(site: str, remaining: int) -> None:
    BUDGET_LEFT.labels(site).set(remaining)


def cache_outcome(outcome: str) -> None:
    CACHE_LOOKUPS.labels(outcome).inc()


def audit_write_failed(action: str) -> None:
    AUDIT_WRITE_FAILURES.labels(action).inc()


def request_done(route: str | None, status: int, seconds: float) -> None:
    REQUEST_SECONDS.labels(route or "(no route)", str(status)).observe(seconds)


def exposition() -> bytes:
    """Every metric in the text format: all workers' when in multiprocess mode."""
    if os.environ.get(MULTIPROCESS_ENV):
        registry = CollectorRegistry()
        multiprocess.MultiProcessCollector(registry)
        return generate_latest(registry)
    return generate_latest(REGISTRY)


def token_matches(header: str | None, token: str) -> bool:
    scheme, _, given = (header or "").partition(" ")
    return scheme.lower() == "bearer" and hmac.compare_digest(given.strip().encode(), token.encode())


def init_app(app: Flask, token: str | None, count_signed_in: Callable[[timedelta], int]) -> None:
    """Add ``/metrics`` when a token is set (without one there is no such page)."""
    if not token:
        return

    @app.get("/metrics")
    def metrics():
        """Prometheus scrape, behind METRICS_TOKEN."""
        as_nobody()
        if not token_matches(request.headers.get("Authorization"), token):
            return Response("A valid METRICS_TOKEN is needed as a bearer token.\n", 401, {"WWW-Authenticate": "Bearer"})
        try:
            AGENTS_SIGNED_IN.set(count_signed_in(SIGNED_IN_WINDOW))
        except SQLAlchemyError:  # the database down must not hide every other number
            pass
        return Response(exposition(), mimetype=CONTENT_TYPE_LATEST, headers={"Cache-Control": "no-store"})
