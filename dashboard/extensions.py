"""Extension objects, bound to an app in create_app()."""
from __future__ import annotations

import logging
import threading
import time
from typing import Any, Callable

from flask import Flask
from flask_limiter import Limiter
from flask_limiter.util import get_remote_address
from flask_login import LoginManager
from flask_wtf import CSRFProtect
from htmx_flask import Htmx
from limits.errors import StorageError
from limits.storage import MemoryStorage
from limits.strategies import STRATEGIES, RateLimiter
from redis.exceptions import RedisError

from dashboard.db import Database

log = logging.getLogger("dashboard.limits")
# What a storage that is down raises (the Redis client's errors, or a socket's).
STORAGE_DOWN = (RedisError, StorageError, OSError)
RECHECK_SECONDS = 5.0


class SharedOrLocal:
    """A rate-limiting strategy that counts in the shared storage (Redis) and, while it
    is down, in this process's memory, with a warning; it goes back to the shared counts
    by itself once the storage answers again (checked at most every RECHECK_SECONDS).

    Counts made meanwhile stay in memory only: the limits hold per process while Redis is
    away, which is the best that can be had without it.
    """

    def __init__(self, shared: RateLimiter, strategy: str, *, clock: Callable[[], float] = time.monotonic) -> None:
        self.shared = shared
        self.local = STRATEGIES[strategy](MemoryStorage())
        self._clock = clock
        self._lock = threading.Lock()
        self._down_since: float | None = None
        self._checked_at = 0.0

    @property
    def using_fallback(self) -> bool:
        return self._down_since is not None

    def _current(self) -> RateLimiter:
        with self._lock:
            if self._down_since is None:
                return self.shared
            now = self._clock()
            if now - self._checked_at < RECHECK_SECONDS:
                return self.local
            self._checked_at = now
        try:
            back = self.shared.storage.check()
        except STORAGE_DOWN:
            back = False
        if not back:
            return self.local
        with self._lock:
            self._down_since = None
        log.warning("login limit storage answers again: counting login attempts in the shared store")
        return self.shared

    def _fall_back(self, error: Exception) -> RateLimiter:
        with self._lock:
            first = self._down_since is None
            if first:
                self._down_since = self._checked_at = self._clock()
        if first:
            log.warning(
                "login limit storage is not answering (%s): counting login attempts in this process until it is back",
                error.__class__.__name__,
            )
        return self.local

    def _call(self, method: str, *args: Any, **kwargs: Any) -> Any:
        strategy = self._current()
        if strategy is self.shared:
            try:
                return getattr(strategy, method)(*args, **kwargs)
            except STORAGE_DOWN as error:
                strategy = self._fall_back(error)
        return getattr(strategy, method)(*args, **kwargs)

    def hit(self, *args: Any, **kwargs: Any) -> bool:
        return self._call("hit", *args, **kwargs)

    def test(self, *args: Any, **kwargs: Any) -> bool:
        return self._call("test", *args, **kwargs)

    def get_window_stats(self, *args: Any, **kwargs: Any) -> Any:
        return self._call("get_window_stats", *args, **kwargs)

    def clear(self, *args: Any, **kwargs: Any) -> None:
        return self._call("clear", *args, **kwargs)


class FallbackLimiter(Limiter):
    """Flask-Limiter whose ``limiter`` (the strategy the login form counts with) falls
    back to memory while Redis is down: a login must not fail because the store of
    attempt counts is away. (Flask-Limiter's own in-memory fallback only covers limits
    it applies itself, through decorators.)"""

    def init_app(self, app: Flask) -> None:
        super().init_app(app)
        self._shared_or_local = SharedOrLocal(Limiter.limiter.fget(self), self._strategy or "fixed-window")

    @property
    def limiter(self) -> SharedOrLocal:  # type: ignore[override]
        return self._shared_or_local


db = Database()
login_manager = LoginManager()
csrf = CSRFProtect()
htmx = Htmx()
# Limits are only declared where they apply (the login form); no default limits. Each
# init_app gives the limiter a fresh storage (memory, or Redis from REDIS_URL).
limiter = FallbackLimiter(key_func=get_remote_address, strategy="moving-window")
