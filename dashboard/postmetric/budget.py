"""A per-key request budget for PostMetric's rate limit (100 requests a minute per key).

The budget is shared by every agent using the same key, so the client spends it
carefully: ``RateBudget.acquire()`` refuses (``BudgetExhausted``) instead of calling
PostMetric when the budget is spent, and ``observe()`` learns from PostMetric's own
``X-RateLimit-*`` and ``Retry-After`` headers, which also count requests made by
other processes with the same key.

Limits: this is per process. Several workers with the same key each keep their own
window; the upstream headers keep them roughly honest.
"""

from __future__ import annotations

import hashlib
import threading
import time
from collections import deque
from collections.abc import Callable, Mapping
from email.utils import parsedate_to_datetime

from .errors import BudgetExhausted

__all__ = ["RateBudget", "BudgetRegistry", "key_fingerprint", "parse_retry_after", "parse_reset"]

DEFAULT_LIMIT = 100
DEFAULT_WINDOW = 60.0
DEFAULT_429_BLOCK = 60.0
# A bogus header must not lock every agent out for days.
MAX_BLOCK = 3600.0


def _header(headers: Mapping[str, str], name: str) -> str | None:
    value = headers.get(name)
    if value is None:
        lowered = name.lower()
        for key, candidate in headers.items():
            if key.lower() == lowered:
                return candidate
    return value


def parse_retry_after(value: str | None, *, wall_now: float) -> float | None:
    """Seconds from a ``Retry-After`` value (delta seconds or an HTTP date), or None."""
    if value is None:
        return None
    value = value.strip()
    if not value:
        return None
    try:
        seconds = float(value)
    except ValueError:
        try:
            moment = parsedate_to_datetime(value)
        except (TypeError, ValueError, IndexError):
            return None
        if moment is None:  # pragma: no cover - older Pythons
            return None
        seconds = moment.timestamp() - wall_now
    if seconds != seconds or seconds in (float("inf"), float("-inf")):  # NaN / inf
        return None
    return min(max(0.0, seconds), MAX_BLOCK)


def parse_reset(value: str | None, *, wall_now: float) -> float | None:
    """Seconds until ``X-RateLimit-Reset``, or None.

    PostMetric sends epoch seconds. Small values (below 10^9, i.e. before 2001) are
    taken as a delta in seconds, which some gateways send instead.
    """
    if value is None:
        return None
    try:
        reset = float(value.strip())
    except ValueError:
        return None
    if reset != reset or reset in (float("inf"), float("-inf")):
        return None
    seconds = reset - wall_now if reset >= 1e9 else reset
    return min(max(0.0, seconds), MAX_BLOCK)


class RateBudget:
    """Thread-safe sliding-window budget: at most ``limit`` requests per ``window`` s.

    ``clock`` is monotonic-like (used for the window and blocks); ``wall_clock`` is
    epoch seconds (only used to read ``X-RateLimit-Reset`` and HTTP-date headers).
    """

    def __init__(
        self,
        limit: int = DEFAULT_LIMIT,
        window: float = DEFAULT_WINDOW,
        *,
        clock: Callable[[], float] = time.monotonic,
        wall_clock: Callable[[], float] = time.time,
    ) -> None:
        if limit < 1:
            raise ValueError("limit must be at least 1")
        if window <= 0:
            raise ValueError("window must be positive")
        self.limit = int(limit)
        self.window = float(window)
        self._clock = clock
        self._wall_clock = wall_clock
        self._lock = threading.Lock()
        self._sent: deque[float] = deque()
        self._blocked_until = float("-inf")
        # What PostMetric told us: requests left until a moment (monotonic).
        self._upstream_remaining: int | None = None
        self._upstream_until = float("-inf")

    def __repr__(self) -> str:
        return f"RateBudget(limit={self.limit}, window={self.window})"

    # -- internals (call with the lock held) ------------------------------------

    def _prune(self, now: float) -> None:
        horizon = now - self.window
        while self._sent and self._sent[0] <= horizon:
            self._sent.popleft()
        if self._upstream_remaining is not None and now >= self._upstream_until:
            self._upstream_remaining = None

    def _wait(self, now: float) -> float:
        """Seconds until one request may be sent (0 when it may be sent now)."""
        self._prune(now)
        waits = [0.0]
        if self._blocked_until > now:
            waits.append(self._blocked_until - now)
        if len(self._sent) >= self.limit:
            waits.append(self._sent[len(self._sent) - self.limit] + self.window - now)
        if self._upstream_remaining is not None and self._upstream_remaining <= 0:
            waits.append(self._upstream_until - now)
        return max(waits)

    # -- public API --------------------------------------------------------------

    def acquire(self) -> None:
        """Take one request from the budget or raise ``BudgetExhausted``."""
        with self._lock:
            now = self._clock()
            wait = self._wait(now)
            if wait > 0:
                raise BudgetExhausted(retry_after=wait)
            self._sent.append(now)
            if self._upstream_remaining is not None:
                self._upstream_remaining -= 1

    def remaining(self) -> int:
        """Requests the budget allows right now (for the operator's metrics)."""
        with self._lock:
            now = self._clock()
            self._prune(now)
            left = self.limit - len(self._sent)
            if self._upstream_remaining is not None:
                left = min(left, self._upstream_remaining)
            return max(left, 0)

    def seconds_until_available(self) -> float:
        """0.0 when ``acquire()`` would succeed now, otherwise the seconds to wait."""
        with self._lock:
            return self._wait(self._clock())

    def observe(self, headers: Mapping[str, str], status: int, now: float | None = None) -> None:
        """Learn from one PostMetric response (its headers and status)."""
        with self._lock:
            now = self._clock() if now is None else now
            wall_now = self._wall_clock()
            reset_in = parse_reset(_header(headers, "X-RateLimit-Reset"), wall_now=wall_now)
            remaining_text = _header(headers, "X-RateLimit-Remaining")
            remaining: int | None
            try:
                remaining = int(float(remaining_text)) if remaining_text is not None else None
            except ValueError:
                remaining = None
            if remaining is not None:
                self._upstream_remaining = max(0, remaining)
                self._upstream_until = now + (reset_in if reset_in is not None else self.window)
            if status == 429:
                block = parse_retry_after(_header(headers, "Retry-After"), wall_now=wall_now)
                if block is None:
                    block = reset_in if reset_in else DEFAULT_429_BLOCK
                self._blocked_until = max(self._blocked_until, now + block)


def key_fingerprint(api_key: str) -> str:
    """A stable, non-reversible name for a key (for registries and log correlation)."""
    return hashlib.sha256(api_key.encode("utf-8")).hexdigest()


class BudgetRegistry:
    """One shared ``RateBudget`` per API key in this process.

    Budgets are stored under a SHA-256 of the key, never the key itself. New budgets
    get ``limit``/``window``/clocks, or come from ``factory`` when one is given.
    """

    def __init__(
        self,
        limit: int = DEFAULT_LIMIT,
        window: float = DEFAULT_WINDOW,
        *,
        clock: Callable[[], float] = time.monotonic,
        wall_clock: Callable[[], float] = time.time,
        factory: Callable[[], RateBudget] | None = None,
    ) -> None:
        if factory is None:
            RateBudget(limit, window)  # validate the arguments now, not on first use

            def factory() -> RateBudget:
                return RateBudget(limit, window, clock=clock, wall_clock=wall_clock)

        self._factory = factory
        self._lock = threading.Lock()
        self._budgets: dict[str, RateBudget] = {}

    def get(self, api_key: str) -> RateBudget:
        """The budget for ``api_key`` (created on first use)."""
        fingerprint = key_fingerprint(api_key)
        with self._lock:
            budget = self._budgets.get(fingerprint)
            if budget is None:
                budget = self._budgets[fingerprint] = self._factory()
            return budget

    def __len__(self) -> int:
        with self._lock:
            return len(self._budgets)

    def __repr__(self) -> str:
        return f"BudgetRegistry(budgets={len(self)})"
