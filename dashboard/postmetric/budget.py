"""A per-key request budget for PostMetric's rate limit (100 requests a minute per key).

The budget is shared by every agent using the same key, so the client spends it
carefully: ``acquire(spender)`` refuses (a ``BudgetExhausted``) instead of calling
PostMetric when the budget is spent, and ``observe()`` learns from PostMetric's own
``X-RateLimit-*`` and ``Retry-After`` headers, which also count requests made by
other processes with the same key.

The budget is also fair (``FairPolicy``, decided by the pure function ``refusal``):
interactive look-ups come first, so live-view ticks, exports and background refreshes
only spend what is above a reserve; and no one agent takes more than a share of a
window while others are asking too. ``RateBudget`` keeps the window in this process;
``dashboard.shared_state.RedisRateBudget`` keeps it in Redis for every instance, and
both decide with the same ``refusal``.
"""

from __future__ import annotations

import hashlib
import math
import threading
import time
from collections import deque
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Protocol
from email.utils import parsedate_to_datetime

from .errors import AgentShareExceeded, BudgetExhausted, ReservedForInteractive

__all__ = [
    "Budget", "RateBudget", "BudgetRegistry", "FairPolicy", "Spender", "Sent", "Window", "Lesson",
    "refusal", "learn", "key_fingerprint", "parse_retry_after", "parse_reset",
]

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


@dataclass(frozen=True)
class Spender:
    """Who spends a request: an agent (None: nobody in particular, e.g. a connection
    test) and whether it is background work (a live-view tick, an export, a background
    refresh) rather than an agent waiting for a customer."""

    agent: str | None = None
    background: bool = False


ANYONE = Spender()


@dataclass(frozen=True)
class FairPolicy:
    """How a window's requests are shared out (settings POSTMETRIC_INTERACTIVE_RESERVE,
    POSTMETRIC_AGENT_SHARE and POSTMETRIC_AGENT_MINIMUM)."""

    reserve: float = 0.2
    """Share of the window kept for interactive look-ups: background work spends only above it."""
    agent_share: float = 1 / 3
    agent_minimum: int = 10

    def agent_cap(self, limit: int) -> int:
        """Requests one agent may make in a window while others are asking too."""
        return max(self.agent_minimum, math.ceil(limit * self.agent_share - 1e-9))

    def background_limit(self, limit: int) -> int:
        """How full the window may be when background work still spends."""
        return limit - math.ceil(limit * self.reserve - 1e-9)


UNFAIR = FairPolicy(reserve=0.0, agent_share=1.0, agent_minimum=1)
"""No reserve and no per-agent cap: the plain budget."""


@dataclass(frozen=True)
class Sent:
    """One request in the window: when (on the budget's clock) and for which agent."""

    at: float
    agent: str | None = None


@dataclass(frozen=True)
class Window:
    """A budget's state at one moment: the requests of the last ``window`` seconds
    (oldest first) and what PostMetric said (times on the budget's clock)."""

    sent: Sequence[Sent]
    blocked_until: float = float("-inf")
    upstream_remaining: int | None = None
    upstream_until: float = float("-inf")

    def left(self, limit: int) -> int:
        """Requests still allowed in this window (PostMetric's own count, when lower)."""
        left = limit - len(self.sent)
        if self.upstream_remaining is not None:
            left = min(left, self.upstream_remaining)
        return max(left, 0)


def refusal(
    state: Window, spender: Spender, now: float, *, limit: int, window: float, policy: FairPolicy
) -> BudgetExhausted | None:
    """Why ``spender`` may not send a request now (the error to raise), or None.

    In order: PostMetric said to stop (a 429, or no requests remaining); the window is
    full; background work meets the interactive reserve; the agent has had their share
    while others are asking too, or going on would leave less than a share for a
    colleague who comes next.
    """
    sent = state.sent
    if state.blocked_until > now:
        return BudgetExhausted(retry_after=state.blocked_until - now)
    if state.upstream_remaining is not None and state.upstream_remaining <= 0 and state.upstream_until > now:
        return BudgetExhausted(retry_after=state.upstream_until - now)

    def frees_in(entries: Sequence[Sent], keep: int) -> float:
        """Seconds until fewer than ``keep`` of ``entries`` are in the window."""
        return max(entries[len(entries) - keep].at + window - now, 0.0)

    if len(sent) >= limit:
        return BudgetExhausted(retry_after=frees_in(sent, limit))
    background_limit = policy.background_limit(limit)
    if spender.background and len(sent) >= background_limit:
        return ReservedForInteractive(retry_after=frees_in(sent, max(background_limit, 1)))
    if spender.agent is not None:
        cap = policy.agent_cap(limit)
        mine = [entry for entry in sent if entry.agent == spender.agent]
        if len(mine) >= cap:
            others_asking = any(entry.agent not in (None, spender.agent) for entry in sent)
            if others_asking or limit - len(sent) <= cap:
                return AgentShareExceeded(len(mine), retry_after=frees_in(mine, cap))
    return None


@dataclass(frozen=True)
class Lesson:
    """What one PostMetric response teaches, in seconds from now."""

    remaining: int | None
    """X-RateLimit-Remaining, for ``remaining_for`` seconds."""
    remaining_for: float
    block: float | None
    """After a 429: send nothing for this long."""


def learn(headers: Mapping[str, str], status: int, *, wall_now: float, window: float) -> Lesson:
    """Read ``X-RateLimit-*`` and, after a 429, ``Retry-After``."""
    reset_in = parse_reset(_header(headers, "X-RateLimit-Reset"), wall_now=wall_now)
    remaining_text = _header(headers, "X-RateLimit-Remaining")
    remaining: int | None
    try:
        remaining = max(0, int(float(remaining_text))) if remaining_text is not None else None
    except (ValueError, OverflowError):
        remaining = None
    block = None
    if status == 429:
        block = parse_retry_after(_header(headers, "Retry-After"), wall_now=wall_now)
        if block is None:
            block = reset_in if reset_in else DEFAULT_429_BLOCK
    return Lesson(remaining, reset_in if reset_in is not None else window, block)


class Budget(Protocol):
    """What the client needs of a budget (in-process ``RateBudget``, or shared in Redis)."""

    def acquire(self, spender: Spender = ANYONE) -> None: ...

    def observe(self, headers: Mapping[str, str], status: int) -> None: ...

    def remaining(self) -> int: ...


class RateBudget:
    """Thread-safe sliding-window budget: at most ``limit`` requests per ``window`` s,
    shared out by ``policy``.

    ``clock`` is monotonic-like (used for the window and blocks); ``wall_clock`` is
    epoch seconds (only used to read ``X-RateLimit-Reset`` and HTTP-date headers).
    """

    def __init__(
        self,
        limit: int = DEFAULT_LIMIT,
        window: float = DEFAULT_WINDOW,
        *,
        policy: FairPolicy = UNFAIR,
        clock: Callable[[], float] = time.monotonic,
        wall_clock: Callable[[], float] = time.time,
    ) -> None:
        if limit < 1:
            raise ValueError("limit must be at least 1")
        if window <= 0:
            raise ValueError("window must be positive")
        self.limit = int(limit)
        self.window = float(window)
        self.policy = policy
        self._clock = clock
        self._wall_clock = wall_clock
        self._lock = threading.Lock()
        self._sent: deque[Sent] = deque()
        self._blocked_until = float("-inf")
        # What PostMetric told us: requests left until a moment (monotonic).
        self._upstream_remaining: int | None = None
        self._upstream_until = float("-inf")

    def __repr__(self) -> str:
        return f"RateBudget(limit={self.limit}, window={self.window})"

    def _state(self, now: float) -> Window:
        """The window as of ``now`` (call with the lock held)."""
        horizon = now - self.window
        while self._sent and self._sent[0].at <= horizon:
            self._sent.popleft()
        if self._upstream_remaining is not None and now >= self._upstream_until:
            self._upstream_remaining = None
        return Window(tuple(self._sent), self._blocked_until, self._upstream_remaining, self._upstream_until)

    def acquire(self, spender: Spender = ANYONE) -> None:
        """Take one request from the budget or raise ``BudgetExhausted`` (or one of its
        fair-share kinds)."""
        with self._lock:
            now = self._clock()
            refused = refusal(self._state(now), spender, now, limit=self.limit, window=self.window, policy=self.policy)
            if refused is not None:
                raise refused
            self._sent.append(Sent(now, spender.agent))
            if self._upstream_remaining is not None:
                self._upstream_remaining -= 1

    def remaining(self) -> int:
        """Requests the budget allows right now (for the operator's metrics)."""
        with self._lock:
            return self._state(self._clock()).left(self.limit)

    def seconds_until_available(self, spender: Spender = ANYONE) -> float:
        """0.0 when ``acquire(spender)`` would succeed now, otherwise the seconds to wait."""
        with self._lock:
            now = self._clock()
            refused = refusal(self._state(now), spender, now, limit=self.limit, window=self.window, policy=self.policy)
            return 0.0 if refused is None else float(refused.retry_after or 0.0)

    def observe(self, headers: Mapping[str, str], status: int, now: float | None = None) -> None:
        """Learn from one PostMetric response (its headers and status)."""
        with self._lock:
            now = self._clock() if now is None else now
            lesson = learn(headers, status, wall_now=self._wall_clock(), window=self.window)
            if lesson.remaining is not None:
                self._upstream_remaining = lesson.remaining
                self._upstream_until = now + lesson.remaining_for
            if lesson.block is not None:
                self._blocked_until = max(self._blocked_until, now + lesson.block)


def key_fingerprint(api_key: str) -> str:
    """A stable, non-reversible name for a key (for registries and log correlation)."""
    return hashlib.sha256(api_key.encode("utf-8")).hexdigest()


class BudgetRegistry:
    """One shared budget per API key in this process.

    Budgets are stored under a SHA-256 of the key, never the key itself. New budgets
    get ``limit``/``window``/``policy``/clocks, or come from ``factory(fingerprint)``
    when one is given (the shared store's budgets).
    """

    def __init__(
        self,
        limit: int = DEFAULT_LIMIT,
        window: float = DEFAULT_WINDOW,
        *,
        clock: Callable[[], float] = time.monotonic,
        wall_clock: Callable[[], float] = time.time,
        policy: FairPolicy = UNFAIR,
        factory: Callable[[str], Budget] | None = None,
    ) -> None:
        if factory is None:
            RateBudget(limit, window)  # validate the arguments now, not on first use

            def factory(fingerprint: str) -> Budget:
                return RateBudget(limit, window, policy=policy, clock=clock, wall_clock=wall_clock)

        self._factory = factory
        self._lock = threading.Lock()
        self._budgets: dict[str, Budget] = {}

    def get(self, api_key: str) -> Budget:
        """The budget for ``api_key`` (created on first use)."""
        fingerprint = key_fingerprint(api_key)
        with self._lock:
            budget = self._budgets.get(fingerprint)
            if budget is None:
                budget = self._budgets[fingerprint] = self._factory(fingerprint)
            return budget

    def __len__(self) -> int:
        with self._lock:
            return len(self._budgets)

    def __repr__(self) -> str:
        return f"BudgetRegistry(budgets={len(self)})"
