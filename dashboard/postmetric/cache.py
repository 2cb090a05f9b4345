"""In-process cache of visitor look-ups with single flight and stale fallback.

- Fresh copies live ``ttl`` seconds (default 60) in a ``cachetools.TTLCache``, bounded
  by entry count and by an approximate byte weight.
- Concurrent callers for the same key while a fetch is in flight wait for that fetch
  and get the same outcome (or the same error) instead of calling PostMetric again.
- The last good copy of each key is also kept in a separate, bounded "stale" store
  (default 1 h). When a fetch fails with a ``PostMetricError`` and a stale copy exists,
  it is returned with ``stale=True`` and the error, so the agent still sees the data
  with a warning. Errors themselves are never cached.

The cache is per process. Keys are any hashable, normally ``(site_id, visitor_id)``.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Hashable
from dataclasses import dataclass

from cachetools import TTLCache

from .client import FetchResult
from .errors import PostMetricError

__all__ = ["VisitorCache", "CacheOutcome", "CacheStats", "estimate_weight"]


@dataclass(frozen=True)
class CacheOutcome:
    """What ``get_or_fetch`` produced."""

    result: FetchResult
    from_cache: bool
    """True when no fetch was made for this call (fresh hit or stale fallback)."""
    stale: bool
    """True when ``result`` is an older copy shown because the fetch failed."""
    error: PostMetricError | None
    """The failure behind a stale result; None otherwise."""


@dataclass(frozen=True)
class CacheStats:
    hits: int
    misses: int
    fetches: int
    coalesced: int


def estimate_weight(result: FetchResult) -> int:
    """Approximate bytes an entry holds: its body size, or more from its counts.

    Parsed objects take more memory than their JSON; the per-item figures are rough
    sizes of a parsed page view and session.
    """
    visitor = result.visitor
    estimate = 1024 + 400 * len(visitor.page_views) + 600 * len(visitor.sessions)
    return max(int(result.body_bytes), estimate)


class _Flight:
    __slots__ = ("done", "outcome", "error")

    def __init__(self) -> None:
        self.done = threading.Event()
        self.outcome: CacheOutcome | None = None
        self.error: BaseException | None = None


class VisitorCache:
    """TTL cache of ``FetchResult`` per key, with single flight and stale fallback."""

    def __init__(
        self,
        *,
        ttl: float = 60.0,
        max_entries: int = 256,
        max_bytes: int = 64 * 1024 * 1024,
        stale_ttl: float = 3600.0,
        stale_max_entries: int = 1024,
        stale_max_bytes: int | None = None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        if max_entries < 1 or max_bytes < 1:
            raise ValueError("max_entries and max_bytes must be positive")
        self.ttl = float(ttl)
        self.max_entries = int(max_entries)
        self.max_bytes = int(max_bytes)
        self.stale_max_entries = int(stale_max_entries)
        self._lock = threading.Lock()
        # A ttl of 0 disables fresh hits (single flight and stale fallback still work).
        self._fresh: TTLCache = TTLCache(
            maxsize=self.max_bytes, ttl=max(self.ttl, 1e-9), timer=clock, getsizeof=estimate_weight
        )
        self._stale: TTLCache = TTLCache(
            maxsize=int(stale_max_bytes or self.max_bytes),
            ttl=float(stale_ttl),
            timer=clock,
            getsizeof=estimate_weight,
        )
        self._inflight: dict[Hashable, _Flight] = {}
        self._hits = self._misses = self._fetches = self._coalesced = 0

    def __repr__(self) -> str:
        return f"VisitorCache(ttl={self.ttl}, entries={len(self)})"

    def __len__(self) -> int:
        with self._lock:
            self._fresh.expire()
            return len(self._fresh)

    @property
    def currsize(self) -> int:
        """Total approximate bytes of the fresh copies."""
        with self._lock:
            self._fresh.expire()
            return int(self._fresh.currsize)

    @property
    def stats(self) -> CacheStats:
        with self._lock:
            return CacheStats(self._hits, self._misses, self._fetches, self._coalesced)

    # -- reading -----------------------------------------------------------------------

    def peek(self, key: Hashable) -> CacheOutcome | None:
        """The fresh copy, if any; never fetches and does not count in ``stats``."""
        with self._lock:
            result = self._fresh.get(key)
        if result is None:
            return None
        return CacheOutcome(result=result, from_cache=True, stale=False, error=None)

    def get_or_fetch(
        self, key: Hashable, fetch: Callable[[], FetchResult], *, refresh: bool = False
    ) -> CacheOutcome:
        """The fresh copy, or the result of ``fetch()`` (one fetch per key at a time).

        ``refresh=True`` skips the fresh copy (but joins a fetch already in flight).
        On a ``PostMetricError`` the last good copy is returned with ``stale=True`` if
        there is one; otherwise the error is raised (to every waiting caller).
        """
        with self._lock:
            if not refresh:
                result = self._fresh.get(key)
                if result is not None:
                    self._hits += 1
                    return CacheOutcome(result=result, from_cache=True, stale=False, error=None)
            self._misses += 1
            flight = self._inflight.get(key)
            leader = flight is None
            if leader:
                flight = self._inflight[key] = _Flight()
                self._fetches += 1
            else:
                self._coalesced += 1

        if not leader:
            flight.done.wait()
            if flight.error is not None:
                raise flight.error
            assert flight.outcome is not None
            return flight.outcome

        try:
            try:
                result = fetch()
            except PostMetricError as err:
                with self._lock:
                    previous = self._stale.get(key)
                if previous is None:
                    flight.error = err
                    raise
                flight.outcome = CacheOutcome(result=previous, from_cache=True, stale=True, error=err)
            except BaseException as exc:
                flight.error = exc
                raise
            else:
                self._store(key, result)
                flight.outcome = CacheOutcome(result=result, from_cache=False, stale=False, error=None)
            return flight.outcome
        finally:
            with self._lock:
                self._inflight.pop(key, None)
            flight.done.set()

    # -- writing -----------------------------------------------------------------------

    def _store(self, key: Hashable, result: FetchResult) -> None:
        with self._lock:
            for store, max_entries in ((self._fresh, self.max_entries), (self._stale, self.stale_max_entries)):
                store.pop(key, None)
                try:
                    store[key] = result
                except ValueError:  # heavier than the whole store: do not keep it
                    continue
                while len(store) > max_entries:
                    store.popitem()  # least recently used

    def invalidate(self, key: Hashable) -> None:
        """Forget ``key`` entirely (fresh and stale copies)."""
        with self._lock:
            self._fresh.pop(key, None)
            self._stale.pop(key, None)

    def clear(self) -> None:
        """Forget everything (statistics are kept)."""
        with self._lock:
            self._fresh.clear()
            self._stale.clear()
