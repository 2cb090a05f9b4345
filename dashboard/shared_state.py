"""The look-up state every instance and worker shares through Redis (``REDIS_URL``).

Three things, each with the same interface as its in-process twin, which it falls back on:

- ``RedisVisitorCache`` (twin: ``postmetric.cache.VisitorCache``): the fresh copy of each
  visitor for ``VISITOR_CACHE_TTL`` and the last good copy for failures, stored as the
  visitor's JSON compressed with zlib, each key with a TTL and no entry above
  ``MAX_ENTRY_BYTES``; and the single flight: one fetch per (site, base URL, visitor) at a
  time on every instance, under a lock (``SET NX PX``) that expires if its holder dies. The
  holder publishes its outcome (the visitor, the stale copy or the error) on a per-flight
  list that the others wait on with ``BLPOP``: they never ask PostMetric themselves.
- ``RedisRateBudget`` (twin: ``postmetric.budget.RateBudget``): each key's window of
  requests, what PostMetric's headers said and a 429's "blocked until", taken in one
  ``WATCH``/``MULTI`` transaction that re-runs on a concurrent change; the decision is the
  same pure ``budget.refusal`` the in-process budget uses (one policy, written once).
- ``RedisProgressBoard`` (twin: ``progress.ProgressBoard``): the retry notice of each
  flight and who waits for it, so a progress poll reaching any worker sees it.

When Redis does not answer, each call uses the in-process twin instead, one warning is
logged (at most one a minute) and Redis is tried again after ``RETRY_SECONDS``.
"""
from __future__ import annotations

import hashlib
import json
import logging
import math
import time
import uuid
import zlib
from collections.abc import Callable, Hashable, Iterator, Mapping
from contextlib import contextmanager
from datetime import datetime
from typing import TypeVar

import redis

from dashboard.postmetric import errors as error_types
from dashboard.postmetric.budget import ANYONE, FairPolicy, RateBudget, Sent, Spender, Window, learn, refusal
from dashboard.postmetric.cache import CacheOutcome, CacheStats, VisitorCache
from dashboard.postmetric.client import FetchResult, RetryNotice
from dashboard.postmetric.errors import PostMetricError
from dashboard.postmetric.models import Visitor
from dashboard.progress import Progress, ProgressBoard

__all__ = ["RedisLink", "RedisVisitorCache", "RedisRateBudget", "RedisProgressBoard", "encode_outcome", "decode_outcome"]

log = logging.getLogger("dashboard.shared_state")
T = TypeVar("T")

PREFIX = "vl:"
RETRY_SECONDS = 5.0
WARN_EVERY_SECONDS = 60.0
# A compressed visitor above this is not stored (PostMetric's largest answers compress
# to about 16 KB; a deployment without its caps could send far more).
MAX_ENTRY_BYTES = 2 * 1024 * 1024
STALE_TTL_SECONDS = 3600.0
# How long a flight's outcome stays readable for those waiting on it.
OUTCOME_TTL_MS = 30_000
# A waiter checks this often that the flight it waits for is still held.
WAIT_SLICE_SECONDS = 1.0

_RELEASE = """
if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('DEL', KEYS[1]) end
return 0
"""


class RedisLink:
    """The Redis connection pool and whether Redis answers; ``call`` runs the shared
    version of something, or the in-process one while Redis is down."""

    def __init__(
        self,
        url: str,
        *,
        clock: Callable[[], float] = time.monotonic,
        retry_seconds: float = RETRY_SECONDS,
        warn_every: float = WARN_EVERY_SECONDS,
    ) -> None:
        self.client = redis.Redis.from_url(url, socket_timeout=3.0, socket_connect_timeout=1.0, health_check_interval=30)
        self._clock = clock
        self._retry_seconds = retry_seconds
        self._warn_every = warn_every
        self._down_until = float("-inf")
        self._warned_at = float("-inf")
        self.failures = 0
        """Calls that found Redis not answering (for metrics)."""

    @property
    def up(self) -> bool:
        return self._clock() >= self._down_until

    def failed(self, error: Exception) -> None:
        """Redis did not answer: use the in-process state for a while, and say so (not too often)."""
        now = self._clock()
        self.failures += 1
        self._down_until = now + self._retry_seconds
        if now - self._warned_at >= self._warn_every:
            self._warned_at = now
            log.warning(
                "Redis (REDIS_URL) is not answering (%s); this process uses its own visitor cache, rate budget and "
                "retry progress meanwhile and tries Redis again in %.0f s.",
                type(error).__name__,
                self._retry_seconds,
            )

    def call(self, shared: Callable[[], T], local: Callable[[], T]) -> T:
        if self.up:
            try:
                return shared()
            except redis.RedisError as error:
                self.failed(error)
        return local()


def _name(key: Hashable) -> str:
    """A fixed-length Redis name for a cache key such as (site, base URL, visitor ID)."""
    text = json.dumps(key if isinstance(key, (str, int)) else list(key), ensure_ascii=False, default=str)
    return hashlib.sha256(text.encode("utf-8")).hexdigest()[:40]


# -- outcomes as compact bytes -------------------------------------------------------------


def _pack(obj: object) -> bytes:
    return zlib.compress(json.dumps(obj, separators=(",", ":"), ensure_ascii=False).encode("utf-8"), 1)


def _unpack(blob: bytes) -> object:
    return json.loads(zlib.decompress(blob))


def _result_dict(result: FetchResult) -> dict[str, object]:
    return {
        "visitor": result.visitor.model_dump_json(by_alias=True),
        "fetched_at": result.fetched_at.isoformat(),
        "attempts": result.attempts,
        "elapsed": result.elapsed,
        "body_bytes": result.body_bytes,
    }


def _result_from(data: Mapping[str, object]) -> FetchResult:
    return FetchResult(
        visitor=Visitor.model_validate_json(str(data["visitor"])),
        fetched_at=datetime.fromisoformat(str(data["fetched_at"])),
        attempts=int(data["attempts"]),  # type: ignore[arg-type]
        elapsed=float(data["elapsed"]),  # type: ignore[arg-type]
        body_bytes=int(data["body_bytes"]),  # type: ignore[arg-type]
    )


def _error_dict(error: PostMetricError) -> dict[str, object]:
    state = {
        name: _error_dict(value) if isinstance(value, PostMetricError) else value
        for name, value in vars(error).items()
        if isinstance(value, (str, int, float, bool, type(None), PostMetricError))
    }
    return {"class": type(error).__name__, "state": state}


def _error_from(data: Mapping[str, object]) -> PostMetricError:
    """The typed error back; only the classes of ``postmetric.errors`` are made."""
    cls = getattr(error_types, str(data.get("class")), None)
    if not (isinstance(cls, type) and issubclass(cls, PostMetricError)):
        cls = PostMetricError
    state = {
        name: _error_from(value) if isinstance(value, dict) and "class" in value else value
        for name, value in dict(data.get("state") or {}).items()  # type: ignore[call-overload]
    }
    return error_types._rebuild(cls, state)


def encode_outcome(outcome: CacheOutcome | PostMetricError) -> bytes:
    """A flight's outcome (the result, the stale copy with its error, or the error) as bytes."""
    if isinstance(outcome, PostMetricError):
        return _pack({"error": _error_dict(outcome)})
    return _pack(
        {
            "result": _result_dict(outcome.result),
            "from_cache": outcome.from_cache,
            "stale": outcome.stale,
            "error": _error_dict(outcome.error) if outcome.error else None,
        }
    )


def decode_outcome(blob: bytes) -> CacheOutcome | PostMetricError:
    data = _unpack(blob)
    assert isinstance(data, dict)
    if "result" not in data:
        return _error_from(data["error"])
    return CacheOutcome(
        result=_result_from(data["result"]),
        from_cache=bool(data["from_cache"]),
        stale=bool(data["stale"]),
        error=_error_from(data["error"]) if data.get("error") else None,
    )


# -- the visitor cache and single flight ---------------------------------------------------


class RedisVisitorCache:
    """``VisitorCache``'s interface over Redis, shared by every instance (see the module)."""

    def __init__(
        self,
        link: RedisLink,
        local: VisitorCache,
        *,
        ttl: float,
        lock_seconds: float,
        stale_ttl: float = STALE_TTL_SECONDS,
        max_entry_bytes: int = MAX_ENTRY_BYTES,
    ) -> None:
        self.link = link
        self.local = local
        self.ttl = float(ttl)
        self.stale_ttl = float(stale_ttl)
        self.lock_ms = max(1000, int(lock_seconds * 1000))
        self.max_entry_bytes = int(max_entry_bytes)
        self._redis = link.client
        self._release = self._redis.register_script(_RELEASE)
        self._hits = self._misses = self._fetches = self._coalesced = 0

    @property
    def stats(self) -> CacheStats:
        """This process's counts (the in-process fallback's included)."""
        local = self.local.stats
        return CacheStats(
            self._hits + local.hits, self._misses + local.misses, self._fetches + local.fetches, self._coalesced + local.coalesced
        )

    def get_or_fetch(self, key: Hashable, fetch: Callable[[], FetchResult], *, refresh: bool = False) -> CacheOutcome:
        """Like ``VisitorCache.get_or_fetch``, for every instance at once."""
        return self.link.call(
            lambda: self._shared(key, fetch, refresh), lambda: self.local.get_or_fetch(key, fetch, refresh=refresh)
        )

    def peek(self, key: Hashable) -> CacheOutcome | None:
        def shared() -> CacheOutcome | None:
            blob = self._redis.get(PREFIX + "fresh:" + _name(key))
            return None if blob is None else CacheOutcome(_result_from(_unpack(blob)), True, False, None)  # type: ignore[arg-type]

        return self.link.call(shared, lambda: self.local.peek(key))

    def invalidate(self, key: Hashable) -> None:
        name = _name(key)
        self.local.invalidate(key)
        self.link.call(lambda: self._redis.delete(PREFIX + "fresh:" + name, PREFIX + "stale:" + name), lambda: 0)

    def clear(self) -> None:
        """Forget every shared copy (and this process's fallback copies)."""
        self.local.clear()

        def shared() -> None:
            for pattern in ("fresh:*", "stale:*"):
                names = list(self._redis.scan_iter(PREFIX + pattern, count=500))
                if names:
                    self._redis.delete(*names)

        self.link.call(shared, lambda: None)

    # -- inside ------------------------------------------------------------------------------

    def _shared(self, key: Hashable, fetch: Callable[[], FetchResult], refresh: bool) -> CacheOutcome:
        name = _name(key)
        fresh, flight = PREFIX + "fresh:" + name, PREFIX + "flight:" + name
        while True:
            if not refresh:
                blob = self._redis.get(fresh)
                if blob is not None:
                    self._hits += 1
                    return CacheOutcome(_result_from(_unpack(blob)), True, False, None)  # type: ignore[arg-type]
            token = uuid.uuid4().hex
            if self._redis.set(flight, token, nx=True, px=self.lock_ms):
                self._misses += 1
                self._fetches += 1
                return self._lead(name, flight, token, fetch)
            outcome = self._follow(flight)
            if outcome is not None:
                self._misses += 1
                self._coalesced += 1
                if isinstance(outcome, PostMetricError):
                    raise outcome
                return outcome
            # The flight ended before we could wait on it (its copy is fresh now), or its
            # holder died: look again.
            refresh = False

    def _lead(self, name: str, flight: str, token: str, fetch: Callable[[], FetchResult]) -> CacheOutcome:
        """Fetch, store, and tell everyone waiting on this flight."""
        outcome: CacheOutcome | PostMetricError
        try:
            try:
                result = fetch()
            except PostMetricError as error:
                previous = self._quietly(lambda: self._redis.get(PREFIX + "stale:" + name))
                if previous is None:
                    outcome = error
                else:
                    outcome = CacheOutcome(_result_from(_unpack(previous)), True, True, error)  # type: ignore[arg-type]
            else:
                outcome = CacheOutcome(result, False, False, None)
                self._quietly(lambda: self._store(name, result))
            self._quietly(lambda: self._publish(flight, token, outcome))
        except BaseException:
            # Not PostMetric's failure (a bug, an interrupt): free the flight; those
            # waiting see it end without a word and look again.
            self._quietly(lambda: self._release(keys=[flight], args=[token]))
            raise
        if isinstance(outcome, PostMetricError):
            raise outcome
        return outcome

    def _quietly(self, step: Callable[[], T]) -> T | None:
        """A Redis step after the fetch: if Redis fails now, the answer still goes to the agent."""
        try:
            return step()
        except redis.RedisError as error:
            self.link.failed(error)
            return None

    def _store(self, name: str, result: FetchResult) -> None:
        blob = _pack(_result_dict(result))
        if len(blob) > self.max_entry_bytes:
            return
        with self._redis.pipeline(transaction=False) as pipe:
            if self.ttl > 0:
                pipe.set(PREFIX + "fresh:" + name, blob, px=max(1, int(self.ttl * 1000)))
            pipe.set(PREFIX + "stale:" + name, blob, px=int(self.stale_ttl * 1000))
            pipe.execute()

    def _publish(self, flight: str, token: str, outcome: CacheOutcome | PostMetricError) -> None:
        done = PREFIX + "done:" + token
        with self._redis.pipeline(transaction=True) as pipe:
            pipe.rpush(done, encode_outcome(outcome))
            pipe.pexpire(done, OUTCOME_TTL_MS)
            pipe.execute()
        self._release(keys=[flight], args=[token])

    def _follow(self, flight: str) -> CacheOutcome | PostMetricError | None:
        """Wait for the holder of ``flight`` to publish; None when it is gone without a word."""
        while True:
            token = self._redis.get(flight)
            if token is None:
                return None
            done = PREFIX + "done:" + token.decode()
            item = self._redis.blpop([done], timeout=WAIT_SLICE_SECONDS)
            if item is not None:
                # Put it back for the next one waiting (it expires with its list).
                self._redis.rpush(done, item[1])
                return decode_outcome(item[1])


# -- the rate budget -------------------------------------------------------------------------


class RedisRateBudget:
    """One key's budget in Redis, shared by every instance; decided by ``budget.refusal``.

    Times are epoch seconds from ``wall_clock`` (the hosts' clocks are assumed to agree
    to well under a second). ``local`` is used while Redis does not answer.
    """

    def __init__(
        self,
        link: RedisLink,
        local: RateBudget,
        fingerprint: str,
        *,
        limit: int,
        window: float = 60.0,
        policy: FairPolicy,
        wall_clock: Callable[[], float] = time.time,
    ) -> None:
        self.link = link
        self.local = local
        self.limit = int(limit)
        self.window = float(window)
        self.policy = policy
        self._wall = wall_clock
        self._redis = link.client
        base = f"{PREFIX}budget:{fingerprint[:32]}:"
        self._sent, self._blocked, self._upstream = base + "sent", base + "blocked", base + "upstream"

    def __repr__(self) -> str:
        return f"RedisRateBudget(limit={self.limit}, window={self.window})"

    def acquire(self, spender: Spender = ANYONE) -> None:
        self.link.call(lambda: self._acquire(spender), lambda: self.local.acquire(spender))

    def observe(self, headers: Mapping[str, str], status: int) -> None:
        self.local.observe(headers, status)
        self.link.call(lambda: self._observe(headers, status), lambda: None)

    def remaining(self) -> int:
        return self.link.call(lambda: self._window(self._redis, self._wall()).left(self.limit), self.local.remaining)

    def _window(self, reader: redis.client.Pipeline | redis.Redis, now: float) -> Window:
        entries = reader.zrangebyscore(self._sent, now - self.window, "+inf", withscores=True)
        blocked, upstream = reader.mget(self._blocked, self._upstream)
        remaining, until = (None, float("-inf"))
        if upstream is not None:
            left, _, when = upstream.decode().partition(" ")
            remaining, until = int(left), float(when)
        sent = [Sent(score, member.decode().partition(":")[2] or None) for member, score in entries]
        return Window(sent, float(blocked) if blocked is not None else float("-inf"), remaining, until)

    def _acquire(self, spender: Spender) -> None:
        refused: list[PostMetricError] = []

        def take(pipe: redis.client.Pipeline) -> None:
            refused.clear()
            now = self._wall()
            state = self._window(pipe, now)
            problem = refusal(state, spender, now, limit=self.limit, window=self.window, policy=self.policy)
            if problem is not None:
                refused.append(problem)
                return
            pipe.multi()
            pipe.zremrangebyscore(self._sent, "-inf", now - self.window)
            pipe.zadd(self._sent, {f"{uuid.uuid4().hex}:{spender.agent or ''}": now})
            pipe.pexpire(self._sent, int((self.window + 5) * 1000))
            if state.upstream_remaining is not None:
                pipe.set(self._upstream, f"{state.upstream_remaining - 1} {state.upstream_until}", keepttl=True)

        self._redis.transaction(take, self._sent, self._blocked, self._upstream)
        if refused:
            raise refused[0]

    def _observe(self, headers: Mapping[str, str], status: int) -> None:
        now = self._wall()
        lesson = learn(headers, status, wall_now=now, window=self.window)
        if lesson.remaining is not None and lesson.remaining_for > 0:
            self._redis.set(
                self._upstream, f"{lesson.remaining} {now + lesson.remaining_for}", px=max(1, math.ceil(lesson.remaining_for * 1000))
            )
        if lesson.block:
            until = now + lesson.block
            previous = self._redis.get(self._blocked)
            if previous is None or float(previous) < until:
                self._redis.set(self._blocked, repr(until), px=max(1, math.ceil(lesson.block * 1000)))


# -- retry progress --------------------------------------------------------------------------


class RedisProgressBoard:
    """``ProgressBoard``'s interface over Redis: any worker answers an agent's progress poll."""

    def __init__(self, link: RedisLink, local: ProgressBoard, *, ttl_seconds: float) -> None:
        self.link = link
        self.local = local
        self.ttl_ms = max(1000, int(ttl_seconds * 1000))
        self._redis = link.client

    def _watch_key(self, watcher: Hashable) -> str:
        return PREFIX + "watch:" + _name(str(watcher))

    @contextmanager
    def watching(self, watcher: Hashable | None, key: Hashable) -> Iterator[None]:
        if watcher is None:
            yield
            return
        name, watch = _name(key), self._watch_key(watcher)

        def add() -> None:
            with self._redis.pipeline(transaction=True) as pipe:
                pipe.sadd(watch, name)
                pipe.pexpire(watch, self.ttl_ms)
                pipe.execute()

        with self.local.watching(watcher, key):
            self.link.call(add, lambda: None)
            try:
                yield
            finally:
                self.link.call(lambda: self._redis.srem(watch, name), lambda: 0)

    def retrying(self, key: Hashable, notice: RetryNotice) -> None:
        self.local.retrying(key, notice)
        body = json.dumps({"attempt": notice.attempt, "wait": notice.wait, "reason": notice.reason})
        self.link.call(lambda: self._redis.set(PREFIX + "retry:" + _name(key), body, px=self.ttl_ms), lambda: None)

    def finished(self, key: Hashable) -> None:
        self.local.finished(key)
        self.link.call(lambda: self._redis.delete(PREFIX + "retry:" + _name(key)), lambda: 0)

    def for_watcher(self, watcher: Hashable) -> Progress | None:
        def shared() -> Progress | None:
            names = sorted(member.decode() for member in self._redis.smembers(self._watch_key(watcher)))
            if not names:
                return None
            for body in self._redis.mget([PREFIX + "retry:" + name for name in names]):
                if body is not None:
                    return Progress(RetryNotice(**json.loads(body)), time.monotonic())
            return None

        return self.link.call(shared, lambda: self.local.for_watcher(watcher))
