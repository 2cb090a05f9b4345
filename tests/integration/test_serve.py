"""`dashboard serve` (gunicorn) keeps answering while PostMetric hangs."""
from __future__ import annotations

import statistics
import threading
import time

import requests

from dashboard.demo import FakeApiServer
from tests.support.serving import logged_in_session, served_dashboard
from tests.support.waiting import wait_until

SLOW_SECONDS = 4.0


def timed(session: requests.Session, url: str) -> float:
    started = time.perf_counter()
    response = session.get(url, timeout=10)
    assert response.status_code == 200
    return time.perf_counter() - started


def test_twenty_hanging_lookups_do_not_delay_cached_lookups_or_login(tmp_path):
    with FakeApiServer(slow_seconds=SLOW_SECONDS) as api:
        with served_dashboard(tmp_path, api.url, POSTMETRIC_READ_TIMEOUT="8", POSTMETRIC_DEADLINE="8") as url:
            measuring = logged_in_session(url)
            anonymous = requests.Session()
            timed(measuring, f"{url}/visitors/visitor_123")  # warm the cache
            baseline_page = statistics.median(timed(measuring, f"{url}/visitors/visitor_123") for _ in range(5))
            baseline_login = statistics.median(timed(anonymous, f"{url}/login") for _ in range(5))

            hanging_sessions = []
            for _ in range(20):  # one login, twenty connections
                session = requests.Session()
                session.cookies.update(measuring.cookies)
                hanging_sessions.append(session)
            hanging = [
                threading.Thread(target=lambda s=s, n=n: s.get(f"{url}/visitors/fail-slow-{n}", timeout=15))
                for n, s in enumerate(hanging_sessions)
            ]
            for thread in hanging:
                thread.start()
            wait_until(
                lambda: sum(api.stats.calls_by_visitor[f"fail-slow-{n}"] for n in range(20)) == 20,
                timeout=SLOW_SECONDS / 2,
                message=lambda: f"the twenty look-ups did not all reach PostMetric: {dict(api.stats.calls_by_visitor)}",
            )

            busy_page = statistics.median(timed(measuring, f"{url}/visitors/visitor_123") for _ in range(5))
            busy_login = statistics.median(timed(anonymous, f"{url}/login") for _ in range(5))
            still_hanging = sum(thread.is_alive() for thread in hanging)
            for thread in hanging:
                thread.join()
            for session in (measuring, anonymous, *hanging_sessions):
                session.close()
    assert still_hanging == 20  # the measurements happened while all twenty hung
    # "A small margin": well under the upstream's delay, and close to the idle figures.
    assert busy_page < baseline_page + 0.25, (baseline_page, busy_page)
    assert busy_login < baseline_login + 0.25, (baseline_login, busy_login)
