"""The visitor cache: TTL, bounds, refresh, stale fallback and single flight."""
from __future__ import annotations

import threading
from datetime import datetime, timezone

import pytest

from dashboard.postmetric.cache import CacheOutcome, VisitorCache, estimate_weight
from dashboard.postmetric.client import FetchResult
from dashboard.postmetric.errors import ServiceUnavailable, Unauthorized
from dashboard.postmetric.models import Visitor
from tests.support.waiting import wait_until

from tests.support.clocks import FakeClock

KEY = ("site", "visitor-1")


def result(visitor_id: str = "visitor-1", body_bytes: int = 100, sessions: int = 0) -> FetchResult:
    visitor = Visitor.empty(visitor_id).model_copy(update={"session_count": sessions})
    return FetchResult(
        visitor=visitor,
        fetched_at=datetime.now(timezone.utc),
        attempts=1,
        elapsed=0.01,
        body_bytes=body_bytes,
    )


class Fetcher:
    """Counts calls; returns scripted results or raises scripted errors."""

    def __init__(self, *outcomes) -> None:
        self.outcomes = list(outcomes)
        self.calls = 0

    def __call__(self) -> FetchResult:
        self.calls += 1
        outcome = self.outcomes.pop(0) if len(self.outcomes) > 1 else self.outcomes[0]
        if isinstance(outcome, BaseException):
            raise outcome
        return outcome


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


def test_miss_then_hit(clock):
    cache = VisitorCache(clock=clock)
    first = result()
    fetch = Fetcher(first)
    outcome = cache.get_or_fetch(KEY, fetch)
    assert outcome == CacheOutcome(result=first, from_cache=False, stale=False, error=None)
    again = cache.get_or_fetch(KEY, fetch)
    assert again.result is first and again.from_cache and not again.stale
    assert fetch.calls == 1
    stats = cache.stats
    assert (stats.hits, stats.misses, stats.fetches, stats.coalesced) == (1, 1, 1, 0)


def test_keys_are_separate(clock):
    cache = VisitorCache(clock=clock)
    a, b = result("a"), result("b")
    assert cache.get_or_fetch(("s", "a"), Fetcher(a)).result is a
    assert cache.get_or_fetch(("s", "b"), Fetcher(b)).result is b
    assert cache.get_or_fetch(("other-site", "a"), Fetcher(b)).result is b


def test_entries_expire_after_ttl(clock):
    cache = VisitorCache(ttl=60, clock=clock)
    fetch = Fetcher(result())
    cache.get_or_fetch(KEY, fetch)
    clock.now = 59.9
    assert cache.get_or_fetch(KEY, fetch).from_cache
    assert cache.peek(KEY) is not None
    clock.now = 60.0
    assert cache.peek(KEY) is None
    assert not cache.get_or_fetch(KEY, fetch).from_cache
    assert fetch.calls == 2


def test_entry_bound_evicts_least_recently_used(clock):
    cache = VisitorCache(max_entries=2, clock=clock)
    for name in ("a", "b"):
        cache.get_or_fetch(name, Fetcher(result(name)))
    cache.get_or_fetch("a", Fetcher(result("unused")))  # "a" is now most recent
    cache.get_or_fetch("c", Fetcher(result("c")))
    assert len(cache) == 2
    assert cache.peek("b") is None
    assert cache.peek("a") is not None and cache.peek("c") is not None


def test_byte_bound(clock):
    cache = VisitorCache(max_bytes=10_000, clock=clock)
    for name in ("a", "b", "c"):
        cache.get_or_fetch(name, Fetcher(result(name, body_bytes=4_000)))
    assert cache.currsize <= 10_000
    assert cache.peek("a") is None and cache.peek("c") is not None
    # Heavier than the whole cache: returned, not kept.
    huge = result("huge", body_bytes=50_000)
    assert cache.get_or_fetch("huge", Fetcher(huge)).result is huge
    assert cache.peek("huge") is None
    assert cache.peek("c") is not None


def test_weight_uses_body_size_or_counts():
    assert estimate_weight(result(body_bytes=5_000_000)) == 5_000_000
    visitor = Visitor.model_validate(
        {
            "visitorId": "v",
            "sessionCount": 0,
            "pageViewCount": 1000,
            "pageViews": [{"path": "/", "timestamp": "2024-01-15T10:30:00Z"}] * 1000,
        }
    )
    light = FetchResult(visitor=visitor, fetched_at=datetime.now(timezone.utc), attempts=1, elapsed=0.0, body_bytes=10)
    assert estimate_weight(light) >= 1000 * 100


def test_refresh_fetches_again_and_replaces(clock):
    cache = VisitorCache(clock=clock)
    old, new = result(), result(sessions=3)
    cache.get_or_fetch(KEY, Fetcher(old))
    outcome = cache.get_or_fetch(KEY, Fetcher(new), refresh=True)
    assert outcome.result is new and not outcome.from_cache
    assert cache.peek(KEY).result is new


def test_errors_are_not_cached(clock):
    cache = VisitorCache(clock=clock)
    fetch = Fetcher(Unauthorized(upstream_status=401), result())
    with pytest.raises(Unauthorized):
        cache.get_or_fetch(KEY, fetch)
    assert cache.peek(KEY) is None
    assert not cache.get_or_fetch(KEY, fetch).from_cache
    assert fetch.calls == 2


def test_stale_copy_is_served_when_refresh_fails(clock):
    cache = VisitorCache(clock=clock)
    good = result()
    cache.get_or_fetch(KEY, Fetcher(good))
    error = ServiceUnavailable(upstream_status=503)
    outcome = cache.get_or_fetch(KEY, Fetcher(error), refresh=True)
    assert outcome == CacheOutcome(result=good, from_cache=True, stale=True, error=error)


def test_stale_copy_is_served_after_expiry_until_stale_ttl(clock):
    cache = VisitorCache(ttl=60, stale_ttl=3600, clock=clock)
    good = result()
    cache.get_or_fetch(KEY, Fetcher(good))
    clock.now = 600
    outcome = cache.get_or_fetch(KEY, Fetcher(ServiceUnavailable()))
    assert outcome.stale and outcome.result is good and isinstance(outcome.error, ServiceUnavailable)
    # The stale copy is not promoted to fresh: the next call tries PostMetric again.
    fetch = Fetcher(result(sessions=2))
    assert not cache.get_or_fetch(KEY, fetch).stale and fetch.calls == 1
    clock.now = 600 + 3601
    with pytest.raises(ServiceUnavailable):
        cache.get_or_fetch(KEY, Fetcher(ServiceUnavailable()))


def test_non_upstream_errors_propagate_without_stale_fallback(clock):
    cache = VisitorCache(clock=clock)
    cache.get_or_fetch(KEY, Fetcher(result()))
    with pytest.raises(ValueError):
        cache.get_or_fetch(KEY, Fetcher(ValueError("bug")), refresh=True)


def test_invalidate_and_clear(clock):
    cache = VisitorCache(clock=clock)
    cache.get_or_fetch(KEY, Fetcher(result()))
    cache.get_or_fetch("other", Fetcher(result()))
    cache.invalidate(KEY)
    assert cache.peek(KEY) is None
    with pytest.raises(ServiceUnavailable):  # no stale copy either
        cache.get_or_fetch(KEY, Fetcher(ServiceUnavailable()))
    cache.clear()
    assert cache.peek("other") is None and len(cache) == 0


def _run_concurrently(count: int, target) -> list:
    results: list = [None] * count
    barrier = threading.Barrier(count)

    def run(index: int) -> None:
        barrier.wait()
        try:
            results[index] = target()
        except BaseException as exc:  # collected and checked by the test
            results[index] = exc

    threads = [threading.Thread(target=run, args=(i,)) for i in range(count)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=10)
    return results


def every_other_caller_waits(cache: VisitorCache, count: int) -> None:
    """Inside the one fetch: hold it until the other callers have all joined it."""
    wait_until(lambda: cache.stats.coalesced == count - 1, message=lambda: f"not every caller joined the fetch: {cache.stats}")


def test_twenty_concurrent_callers_share_one_fetch():
    cache = VisitorCache()
    calls = 0
    shared = result()

    def slow_fetch() -> FetchResult:
        nonlocal calls
        calls += 1
        every_other_caller_waits(cache, 20)
        return shared

    def lookup() -> CacheOutcome:
        return cache.get_or_fetch(KEY, slow_fetch)

    outcomes = _run_concurrently(20, lookup)
    assert calls == 1
    assert all(isinstance(o, CacheOutcome) and o.result is shared for o in outcomes)
    stats = cache.stats
    assert stats.fetches == 1
    assert stats.coalesced + stats.hits == 19


def test_concurrent_callers_share_one_error():
    cache = VisitorCache()
    calls = 0
    error = ServiceUnavailable(upstream_status=503)

    def failing_fetch() -> FetchResult:
        nonlocal calls
        calls += 1
        every_other_caller_waits(cache, 20)
        raise error

    outcomes = _run_concurrently(20, lambda: cache.get_or_fetch(KEY, failing_fetch))
    assert calls == 1
    assert all(o is error for o in outcomes)
    assert cache.stats.coalesced == 19
