"""Benchmarks of the look-up path (not part of `make test`): `make bench`.

Against the bundled stand-in on loopback with 100 ms of injected upstream latency,
served by `dashboard serve` (gunicorn), it reports median and p95 of:
the raw API call alone; the visitor page with the cache cold (a refresh) and warm;
a session-filter fragment with the cache warm; for visitor_123 and visitor_large
(1,000 page views). Then 20 concurrent cold requests for one visitor, counting
upstream calls. The four measurements of a visitor are taken in turn, so drift in the
machine's speed during a run falls on all of them alike. It measures; it does not
pass or fail.
"""
from __future__ import annotations

import argparse
import statistics
import tempfile
import threading
import time
from pathlib import Path
from typing import Callable

import requests

from dashboard.demo import DEMO_API_KEY, RETURNING_VISITOR_ID, FakeApiServer
from tests.support.serving import logged_in_session, served_dashboard

VISITORS = ("visitor_123", "visitor_large")


def measure(calls: dict[str, Callable[[], None]], repeat: int) -> dict[str, list[float]]:
    """Time each call ``repeat`` times, taking the calls in turn so that every
    measurement sees the same machine: a 2-core machine's speed drifts over a run, and
    timing one kind after another would put that drift into the ratios. Each round
    starts one call later (raw, cold, warm; cold, warm, raw; ...), so that work one call
    leaves behind (garbage to collect) does not always fall on the same next one."""
    for call in calls.values():
        call()  # one untimed warm-up each (connections, imports, first template compile)
    times: dict[str, list[float]] = {name: [] for name in calls}
    names = list(calls)
    for round_ in range(repeat):
        shift = round_ % len(names)
        for name in names[shift:] + names[:shift]:
            call = calls[name]
            started = time.perf_counter()
            call()
            times[name].append(time.perf_counter() - started)
    return times


def summary(times: list[float]) -> tuple[float, float]:
    ordered = sorted(times)
    p95 = ordered[min(len(ordered) - 1, int(round(0.95 * (len(ordered) - 1))))]
    return statistics.median(ordered), p95


def expect_ok(response: requests.Response) -> None:
    if response.status_code != 200:
        raise SystemExit(f"{response.url} answered {response.status_code}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=40)
    parser.add_argument("--latency", type=float, default=0.1)
    args = parser.parse_args()

    with (
        FakeApiServer(latency=args.latency, rate_limit=10**9) as api,
        tempfile.TemporaryDirectory() as tmp,
        # A budget far above the run's traffic: this measures the dashboard, not the budget.
        served_dashboard(Path(tmp), api.url, POSTMETRIC_BUDGET_PER_MINUTE="100000") as url,
    ):
        agent = logged_in_session(url)
        raw = requests.Session()
        headers = {"Authorization": f"Bearer {DEMO_API_KEY}"}
        rows = []
        for visitor_id in VISITORS:
            results = measure(
                {
                    "raw API call": lambda: expect_ok(raw.get(f"{api.url}/api/v1/visitor", params={"visitorId": visitor_id}, headers=headers, timeout=10)),
                    "page, cache cold": lambda: expect_ok(agent.get(f"{url}/visitors/{visitor_id}?refresh=1", timeout=10)),
                    "page, cache warm": lambda: expect_ok(agent.get(f"{url}/visitors/{visitor_id}", timeout=10)),
                    "session fragment, warm": lambda: expect_ok(
                        agent.get(f"{url}/visitors/{visitor_id}?session=none", headers={"HX-Request": "true", "HX-Target": "visitor-detail"}, timeout=10)
                    ),
                },
                args.repeat,
            )
            raw_median = summary(results["raw API call"])[0]
            for name, times in results.items():
                median, p95 = summary(times)
                rows.append((visitor_id, name, median, p95, median / raw_median))

        # 20 concurrent cold requests for one visitor: how many upstream calls?
        api.stats.reset()
        sessions = []
        for _ in range(20):
            session = requests.Session()
            session.cookies.update(agent.cookies)
            sessions.append(session)
        barrier = threading.Barrier(20)

        def cold(session: requests.Session) -> None:
            barrier.wait()
            expect_ok(session.get(f"{url}/visitors/{RETURNING_VISITOR_ID}", timeout=10))  # not fetched before

        threads = [threading.Thread(target=cold, args=(s,)) for s in sessions]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        coalesced_calls = api.stats.calls

    print(f"\nVisitor Lookup benchmark: {args.repeat} requests each, upstream latency {args.latency * 1000:.0f} ms, dashboard serve (gunicorn gthread)\n")
    print("| visitor | measurement | median ms | p95 ms | × raw median |")
    print("|---|---|---:|---:|---:|")
    for visitor_id, name, median, p95, ratio in rows:
        print(f"| {visitor_id} | {name} | {median * 1000:.1f} | {p95 * 1000:.1f} | {ratio:.2f} |")
    print(f"\n20 concurrent cold requests for one visitor made {coalesced_calls} upstream call(s).")


if __name__ == "__main__":
    main()
