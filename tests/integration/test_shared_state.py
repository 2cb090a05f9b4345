"""With REDIS_URL every instance shares the cache, the single flight, the budget and retry progress.

Two ``VisitorService`` objects on one real Redis stand for two instances (they share
nothing else); the PostMetric stand-in counts what reaches it.
"""
from __future__ import annotations

import logging
import threading
import time
from concurrent.futures import ThreadPoolExecutor

import pytest
import redis

from dashboard.demo import FakeApiServer
from dashboard.lookup import VisitorService
from dashboard.postmetric.errors import AgentShareExceeded, BudgetExhausted, ServerError
from dashboard.shared_state import MAX_ENTRY_BYTES, PREFIX, RedisLink, RedisVisitorCache
from tests.conftest import make_settings
from tests.support.sockets import closed_port
from tests.support.upstream import spend_the_key_elsewhere
from tests.support.waiting import wait_until


@pytest.fixture
def redis_url(redis_server_url):
    """The test Redis, emptied for each test."""
    redis.Redis.from_url(redis_server_url).flushdb()
    return redis_server_url


def two_instances(tmp_path, api_url: str, redis_url: str, **changes) -> tuple[VisitorService, VisitorService]:
    settings = make_settings(tmp_path, api_url, redis_url=redis_url, **changes)
    return VisitorService(settings), VisitorService(settings)


def at_once(count: int, look):
    """``look(i)`` for i in range(count), all started together; their results in order."""
    start = threading.Barrier(count)

    def run(index: int):
        start.wait()
        return look(index)

    with ThreadPoolExecutor(count) as pool:
        return list(pool.map(run, range(count)))


def test_a_visitor_fetched_by_one_instance_is_a_hit_on_the_other(tmp_path, redis_url, fake_api):
    one, other = two_instances(tmp_path, fake_api.url, redis_url)
    first = one.lookup("visitor_123")
    second = other.lookup("visitor_123")
    assert (first.from_cache, second.from_cache) == (False, True)
    assert second.visitor == first.visitor and second.fetched_at == first.fetched_at
    assert fake_api.stats.calls == 1


def test_the_shared_copy_is_compressed_and_expires(tmp_path, redis_url, fake_api):
    one, _ = two_instances(tmp_path, fake_api.url, redis_url, visitor_cache_ttl=30)
    one.lookup("visitor_large")
    store = redis.Redis.from_url(redis_url)
    fresh = list(store.scan_iter(PREFIX + "fresh:*"))
    stale = list(store.scan_iter(PREFIX + "stale:*"))
    assert len(fresh) == len(stale) == 1
    # 1,000 page views are about 170 KB of JSON; compressed they are a tenth of that.
    assert len(store.get(fresh[0])) < 40_000
    assert 0 < store.pttl(fresh[0]) <= 30_000 and 0 < store.pttl(stale[0]) <= 3_600_000
    # No key is left without an expiry (Redis is the operator's; what we store must go by itself).
    assert all(store.pttl(name) > 0 for name in store.scan_iter("*"))


def test_an_entry_above_the_cap_is_shown_but_not_stored(tmp_path, redis_url, fake_api):
    one, other = two_instances(tmp_path, fake_api.url, redis_url)
    assert isinstance(one.cache, RedisVisitorCache)
    one.cache.max_entry_bytes = 1000
    assert one.lookup("visitor_large").visitor is not None
    assert other.lookup("visitor_large").from_cache is False
    assert fake_api.stats.calls == 2 and MAX_ENTRY_BYTES > 1000


def test_twenty_concurrent_cold_lookups_over_two_instances_make_one_call(tmp_path, redis_url):
    with FakeApiServer(latency=0.5) as api:
        one, other = two_instances(tmp_path, api.url, redis_url, upstream_read_timeout=5.0, upstream_deadline=5.0)
        lookups = at_once(20, lambda i: (one if i % 2 else other).lookup("visitor_123"))
        assert api.stats.calls == 1
        assert all(lookup.visitor is not None and lookup.visitor.visitor_id == "visitor_123" for lookup in lookups)


def test_those_waiting_get_the_error_without_asking_themselves(tmp_path, redis_url):
    with FakeApiServer(latency=0.4) as api:
        one, other = two_instances(tmp_path, api.url, redis_url, upstream_read_timeout=5.0, upstream_deadline=5.0)
        lookups = at_once(10, lambda i: (one if i % 2 else other).lookup("fail-500"))
        assert api.stats.calls == 1
        assert all(isinstance(lookup.error, ServerError) for lookup in lookups)
        assert {lookup.error.message for lookup in lookups} == {lookups[0].error.message}
        assert "analytics database timed out" in lookups[0].error.message


def test_a_failed_fetch_shows_the_copy_another_instance_saved(tmp_path, redis_url):
    api = FakeApiServer().start()
    try:
        one, other = two_instances(tmp_path, api.url, redis_url, visitor_cache_ttl=0)
        saved = one.lookup("visitor_123")
    finally:
        api.stop()
    shown = other.lookup("visitor_123")  # nothing listens there now
    assert shown.stale and shown.visitor == saved.visitor
    # The retries' deadline ran out; the error that kept coming travels with it.
    assert shown.error is not None and shown.error.kind == "deadline"
    assert shown.error.last_error.kind == "connection_failed" and "refused the connection" in shown.error.message


def test_the_budget_is_one_for_every_instance(tmp_path, redis_url, fake_api):
    one, other = two_instances(tmp_path, fake_api.url, redis_url, upstream_budget_per_minute=6)
    lookups = [(one if i % 2 else other).lookup(f"budget-{i}") for i in range(12)]
    assert fake_api.stats.calls == 6
    refused = [lookup.error for lookup in lookups if lookup.error is not None]
    assert len(refused) == 6 and all(isinstance(error, BudgetExhausted) for error in refused)


def test_concurrent_takes_never_overspend(tmp_path, redis_url, fake_api):
    one, other = two_instances(tmp_path, fake_api.url, redis_url, upstream_budget_per_minute=15)
    lookups = at_once(30, lambda i: (one if i % 2 else other).lookup(f"race-{i}"))
    assert fake_api.stats.calls == 15
    assert sum(lookup.error is None for lookup in lookups) == 15


def test_a_429_seen_by_one_instance_holds_back_the_other(tmp_path, redis_url):
    with FakeApiServer(rate_limit=2) as api:
        spend_the_key_elsewhere(api, 2)  # another user of the key took the stand-in's window
        one, other = two_instances(tmp_path, api.url, redis_url)
        assert one.lookup("visitor_live").error.kind == "rate_limited"  # Retry-After: the window's end
        refused = other.lookup("visitor_123").error
        assert isinstance(refused, BudgetExhausted) and 30 < refused.retry_after <= 60
        assert api.stats.calls == 3


def test_one_agents_burst_leaves_a_colleague_able_to_look_up(tmp_path, redis_url, fake_api):
    one, other = two_instances(tmp_path, fake_api.url, redis_url)
    assert other.find("visitor_123", watcher=2).result.error is None  # a colleague is at work
    burst = [one.find(f"burst-{i}", watcher=1).result for i in range(60)]
    held = [lookup.error for lookup in burst if lookup.error is not None]
    assert len(held) == 60 - 34 and all(isinstance(error, AgentShareExceeded) for error in held)
    assert held[0].message.startswith("You have made 34 look-ups this minute; the team's limit is shared, try again in")
    assert other.find("visitor_live", watcher=2).result.error is None
    assert fake_api.stats.calls == 36


def test_retry_progress_is_seen_from_another_instance(tmp_path, redis_url, fake_api):
    one, other = two_instances(tmp_path, fake_api.url, redis_url, upstream_deadline=3.0)
    # fail-503 says Retry-After: 2, so the fetch sleeps 2 s between its attempts.
    worker = threading.Thread(target=one.find, args=("fail-503",), kwargs={"watcher": 7})
    worker.start()
    try:
        wait_until(lambda: other.progress.for_watcher(7) is not None, timeout=5, message="no progress seen")
        assert other.progress.for_watcher(7).sentence().startswith("PostMetric is")
        assert "attempt 2" in other.progress.for_watcher(7).sentence()
        assert other.progress.for_watcher(8) is None
    finally:
        worker.join()
    assert other.progress.for_watcher(7) is None


def test_without_redis_answering_each_process_carries_on_alone(tmp_path, fake_api, caplog):
    settings = make_settings(tmp_path, fake_api.url, redis_url=f"redis://127.0.0.1:{closed_port()}/0")
    service = VisitorService(settings)
    with caplog.at_level(logging.WARNING, logger="dashboard.shared_state"):
        first = service.lookup("visitor_123")
        second = service.lookup("visitor_123")
    assert first.visitor is not None and (first.from_cache, second.from_cache) == (False, True)
    warnings = [record for record in caplog.records if record.name == "dashboard.shared_state"]
    assert len(warnings) == 1 and "Redis (REDIS_URL) is not answering" in warnings[0].getMessage()
    assert fake_api.stats.calls == 1


def test_redis_is_tried_again_after_a_pause(redis_url):
    now = [0.0]
    link = RedisLink(f"redis://127.0.0.1:{closed_port()}/0", clock=lambda: now[0], retry_seconds=5)
    tried = []

    def shared():
        tried.append(now[0])
        return link.client.ping()

    assert link.call(shared, lambda: "local") == "local"
    assert link.call(shared, lambda: "local") == "local" and tried == [0.0]  # not tried while it rests
    now[0] = 5.0
    link.client = redis.Redis.from_url(redis_url)  # Redis is back (here: at another address)
    assert link.call(shared, lambda: "local") is True and tried == [0.0, 5.0]


def test_a_flight_whose_holder_died_is_taken_over(tmp_path, redis_url, fake_api):
    one, _ = two_instances(tmp_path, fake_api.url, redis_url)
    store = redis.Redis.from_url(redis_url)
    from dashboard.shared_state import _name

    site = one.site(None)
    # A crashed instance's lock: it expires in 0.3 s and nobody will publish.
    store.set(PREFIX + "flight:" + _name((site.slug, site.base_url, "visitor_123")), "dead", px=300)
    started = time.monotonic()
    lookup = one.lookup("visitor_123")
    assert lookup.visitor is not None and time.monotonic() - started < 2.5
    assert fake_api.stats.calls == 1
