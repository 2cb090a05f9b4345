"""Retry progress an agent sees while a look-up is being retried (the loading indicator).

``ProgressBoard`` keeps it in this process; ``dashboard.shared_state.RedisProgressBoard``
keeps it in Redis, so that a poll reaching any worker or instance sees it.
"""
from __future__ import annotations

import threading
import time
from collections.abc import Hashable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass

from dashboard.postmetric.client import RetryNotice


@dataclass(frozen=True)
class Progress:
    """What an in-flight fetch is doing right now, for the loading indicator."""

    notice: RetryNotice
    since: float  # monotonic time of the notice

    def sentence(self) -> str:
        return f"{self.notice.reason}. Retrying (attempt {self.notice.attempt + 1})…"


class ProgressBoard:
    """Which fetch each watcher waits for, and the latest retry notice of each fetch.

    Several agents may wait on one coalesced fetch; each sees that fetch's retries.
    In this process only: without Redis, a poll that reaches another server worker
    finds nothing there, and the indicator keeps its generic text.
    """

    def __init__(self) -> None:
        self._lock = threading.Lock()
        # watcher -> the fetches it waits for (several when every site is asked at once)
        self._watching: dict[Hashable, list[Hashable]] = {}
        self._retries: dict[Hashable, Progress] = {}

    @contextmanager
    def watching(self, watcher: Hashable | None, key: Hashable) -> Iterator[None]:
        if watcher is None:
            yield
            return
        with self._lock:
            self._watching.setdefault(watcher, []).append(key)
        try:
            yield
        finally:
            with self._lock:
                keys = self._watching.get(watcher, [])
                if key in keys:
                    keys.remove(key)
                if not keys:
                    self._watching.pop(watcher, None)

    def retrying(self, key: Hashable, notice: RetryNotice) -> None:
        with self._lock:
            self._retries[key] = Progress(notice, time.monotonic())

    def finished(self, key: Hashable) -> None:
        with self._lock:
            self._retries.pop(key, None)

    def for_watcher(self, watcher: Hashable) -> Progress | None:
        with self._lock:
            for key in self._watching.get(watcher, ()):
                if key in self._retries:
                    return self._retries[key]
            return None
