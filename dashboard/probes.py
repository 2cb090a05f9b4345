"""The balancer's probes: ``/healthz`` (the process answers) and ``/readyz`` (it can
serve: the database, and Redis when configured, answer within READINESS_TIMEOUT, and
no graceful shutdown has begun). Neither needs a login; neither names a version, a
host or a secret.
"""
from __future__ import annotations

import threading
from concurrent.futures import ThreadPoolExecutor, TimeoutError as CheckTimedOut
from pathlib import Path
from typing import Callable

from flask import Flask, g, jsonify
from flask_login import AnonymousUserMixin
from sqlalchemy import Engine, text

OK = "ok"
NOT_ANSWERING = "not answering"


class Readiness:
    """Checks the dependencies, each within ``timeout`` seconds (a hung server must not
    hang the probe), and knows whether the instance is draining."""

    def __init__(self, engine: Engine, *, redis_url: str | None, timeout: float, drain_flag: Path | None) -> None:
        self.engine = engine
        self.timeout = timeout
        self.drain_flag = drain_flag
        self._draining = threading.Event()
        self._redis = None
        if redis_url:
            import redis

            self._redis = redis.Redis.from_url(redis_url, socket_timeout=timeout, socket_connect_timeout=timeout)
        self._pool: ThreadPoolExecutor | None = None
        self._pool_lock = threading.Lock()

    def begin_draining(self) -> None:
        """From now on /readyz answers 503 (in-process; ``serve`` uses the drain flag file)."""
        self._draining.set()

    @property
    def draining(self) -> bool:
        return self._draining.is_set() or (self.drain_flag is not None and self.drain_flag.exists())

    def _within_timeout(self, check: Callable[[], object]) -> str:
        with self._pool_lock:
            if self._pool is None:  # started on first use: nothing starts threads at import
                self._pool = ThreadPoolExecutor(max_workers=4, thread_name_prefix="readiness")
        future = self._pool.submit(check)
        try:
            future.result(timeout=self.timeout)
        except CheckTimedOut:
            return NOT_ANSWERING
        except Exception:
            return NOT_ANSWERING
        return OK

    def _ping_database(self) -> None:
        with self.engine.connect() as connection:
            connection.execute(text("SELECT 1"))

    def checks(self) -> dict[str, str]:
        results = {"database": self._within_timeout(self._ping_database)}
        if self._redis is not None:
            results["redis"] = self._within_timeout(self._redis.ping)
        return results

    def redis_answers(self) -> bool | None:
        """Whether Redis answers (None when none is configured)."""
        return None if self._redis is None else self._within_timeout(self._redis.ping) == OK

    def report(self) -> tuple[dict[str, object], int]:
        """The probe's body and status: ready (200), draining, degraded (only Redis is
        down: the instance serves from in-process state) or unavailable (503)."""
        if self.draining:
            return {"status": "draining"}, 503
        checks = self.checks()
        if all(result == OK for result in checks.values()):
            return {"status": "ready", "checks": checks}, 200
        status = "degraded" if checks["database"] == OK else "unavailable"
        return {"status": status, "checks": checks}, 503


def as_nobody() -> None:
    """A probe answers for the instance, not for an agent: no agent is loaded for it
    (with the database down, loading one would fail the probe itself)."""
    g.setdefault("_login_user", AnonymousUserMixin())


def init_app(app: Flask, readiness: Readiness) -> None:
    app.extensions["readiness"] = readiness

    @app.get("/healthz")
    def healthz():
        """Liveness: answers without login, database or upstream calls."""
        as_nobody()
        return jsonify(status="ok")

    @app.get("/readyz")
    def readyz():
        """Readiness: whether a balancer should send this instance traffic."""
        as_nobody()
        body, status = readiness.report()
        response = jsonify(body)
        response.status_code = status
        response.headers["Cache-Control"] = "no-store"
        return response
