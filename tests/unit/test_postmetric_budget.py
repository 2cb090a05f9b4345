"""The per-key request budget (PostMetric allows 100 requests a minute per key)."""
from __future__ import annotations

import threading
from email.utils import formatdate

import pytest

from dashboard.postmetric.budget import BudgetRegistry, RateBudget, key_fingerprint
from dashboard.postmetric.errors import BudgetExhausted, RateLimited

WALL_START = 1_700_000_000.0


class Clocks:
    """A monotonic clock and a wall clock that move together."""

    def __init__(self) -> None:
        self.now = 1000.0

    def monotonic(self) -> float:
        return self.now

    def wall(self) -> float:
        return WALL_START + (self.now - 1000.0)

    def advance(self, seconds: float) -> None:
        self.now += seconds


@pytest.fixture
def clocks() -> Clocks:
    return Clocks()


def make_budget(clocks: Clocks, limit: int = 100, window: float = 60.0) -> RateBudget:
    return RateBudget(limit, window, clock=clocks.monotonic, wall_clock=clocks.wall)


def test_burst_of_150_allows_exactly_100(clocks):
    budget = make_budget(clocks)
    allowed = refused = 0
    for _ in range(150):
        try:
            budget.acquire()
            allowed += 1
        except BudgetExhausted:
            refused += 1
        clocks.advance(0.1)  # 15 s in all: still inside one window
    assert (allowed, refused) == (100, 50)


def test_exhausted_budget_says_when_a_slot_frees(clocks):
    budget = make_budget(clocks, limit=3, window=60.0)
    for _ in range(3):
        budget.acquire()
        clocks.advance(10)
    # The first request was 30 s ago: its slot frees in 30 s.
    with pytest.raises(BudgetExhausted) as info:
        budget.acquire()
    assert info.value.retry_after == pytest.approx(30.0)
    assert budget.seconds_until_available() == pytest.approx(30.0)
    assert isinstance(info.value, RateLimited)
    assert info.value.kind == "rate_limited" and info.value.status_code == 429 and info.value.retryable
    assert str(info.value) == "PostMetric's request limit is reached; try again in 30 s."
    assert info.value.upstream_status is None
    clocks.advance(30)
    assert budget.seconds_until_available() == 0.0
    budget.acquire()


def test_sliding_window_frees_slots_one_by_one(clocks):
    budget = make_budget(clocks, limit=2, window=10.0)
    budget.acquire()
    clocks.advance(5)
    budget.acquire()
    clocks.advance(5)  # the first has left the window, the second has not
    budget.acquire()
    with pytest.raises(BudgetExhausted):
        budget.acquire()


def test_remaining_zero_blocks_until_reset(clocks):
    budget = make_budget(clocks)
    budget.acquire()
    budget.observe({"X-RateLimit-Limit": "100", "X-RateLimit-Remaining": "0", "X-RateLimit-Reset": str(int(clocks.wall() + 42))}, 200)
    with pytest.raises(BudgetExhausted) as info:
        budget.acquire()
    assert info.value.retry_after == pytest.approx(42.0)
    clocks.advance(41.5)
    with pytest.raises(BudgetExhausted):
        budget.acquire()
    clocks.advance(0.5)
    budget.acquire()


def test_headers_are_case_insensitive(clocks):
    budget = make_budget(clocks)
    budget.observe({"x-ratelimit-remaining": "0", "x-ratelimit-reset": str(int(clocks.wall() + 5))}, 200)
    assert budget.seconds_until_available() == pytest.approx(5.0)


def test_upstream_remaining_counts_other_processes(clocks):
    # PostMetric says 2 are left (other workers spent the rest): only 2 more go out.
    budget = make_budget(clocks)
    budget.observe({"X-RateLimit-Remaining": "2", "X-RateLimit-Reset": str(int(clocks.wall() + 20))}, 200)
    budget.acquire()
    budget.acquire()
    with pytest.raises(BudgetExhausted) as info:
        budget.acquire()
    assert info.value.retry_after == pytest.approx(20.0)
    clocks.advance(20)
    budget.acquire()


def test_reset_in_the_past_does_not_block(clocks):
    budget = make_budget(clocks)
    budget.observe({"X-RateLimit-Remaining": "0", "X-RateLimit-Reset": str(int(clocks.wall() - 5))}, 200)
    budget.acquire()


def test_429_with_retry_after_blocks(clocks):
    budget = make_budget(clocks)
    budget.observe({"Retry-After": "7"}, 429)
    assert budget.seconds_until_available() == pytest.approx(7.0)
    with pytest.raises(BudgetExhausted):
        budget.acquire()
    clocks.advance(7)
    budget.acquire()


def test_429_with_http_date_retry_after(clocks):
    budget = make_budget(clocks)
    budget.observe({"Retry-After": formatdate(clocks.wall() + 30, usegmt=True)}, 429)
    assert budget.seconds_until_available() == pytest.approx(30.0, abs=1.0)


def test_429_falls_back_to_reset_then_to_a_minute(clocks):
    budget = make_budget(clocks)
    budget.observe({"X-RateLimit-Reset": str(int(clocks.wall() + 12))}, 429)
    assert budget.seconds_until_available() == pytest.approx(12.0)

    other = make_budget(clocks)
    other.observe({}, 429)
    assert other.seconds_until_available() == pytest.approx(60.0)


def test_garbage_headers_are_ignored(clocks):
    budget = make_budget(clocks)
    budget.observe({"X-RateLimit-Remaining": "lots", "X-RateLimit-Reset": "soon", "Retry-After": "later"}, 200)
    budget.acquire()
    budget.observe({"Retry-After": "later"}, 429)  # unreadable: a minute
    assert budget.seconds_until_available() == pytest.approx(60.0)


def test_absurd_retry_after_is_capped_at_an_hour(clocks):
    budget = make_budget(clocks)
    budget.observe({"Retry-After": "999999999"}, 429)
    assert budget.seconds_until_available() == pytest.approx(3600.0)


def test_acquire_is_thread_safe():
    budget = RateBudget(100, 60.0)
    allowed: list[int] = []
    lock = threading.Lock()
    barrier = threading.Barrier(15)

    def worker() -> None:
        barrier.wait()
        for _ in range(10):
            try:
                budget.acquire()
            except BudgetExhausted:
                continue
            with lock:
                allowed.append(1)

    threads = [threading.Thread(target=worker) for _ in range(15)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert len(allowed) == 100


def test_registry_shares_one_budget_per_key_and_never_stores_the_key(clocks):
    key_a, key_b = "pm_" + "a" * 64, "pm_" + "b" * 64
    registry = BudgetRegistry(limit=2, window=60.0, clock=clocks.monotonic, wall_clock=clocks.wall)
    assert registry.get(key_a) is registry.get(key_a)
    assert registry.get(key_a) is not registry.get(key_b)
    registry.get(key_a).acquire()
    registry.get(key_a).acquire()
    with pytest.raises(BudgetExhausted):
        registry.get(key_a).acquire()
    registry.get(key_b).acquire()
    assert len(registry) == 2
    assert key_a not in repr(registry) and key_a not in str(vars(registry))
    assert key_fingerprint(key_a) in registry._budgets  # noqa: SLF001 - checking the storage key
    assert key_fingerprint(key_a) != key_a and len(key_fingerprint(key_a)) == 64


@pytest.mark.parametrize(("limit", "window"), [(0, 60.0), (10, 0.0)])
def test_invalid_settings_are_rejected(limit, window):
    with pytest.raises(ValueError):
        RateBudget(limit, window)
