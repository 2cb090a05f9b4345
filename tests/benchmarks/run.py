"""Benchmarks of the dashboard's own work per request (not part of `make test`): `make bench`.

One run serves the dashboard with `dashboard serve` (gunicorn) against the bundled
stand-in on loopback with 100 ms of injected upstream latency, and beside it a
hello-world Flask route served with the same gunicorn options (tests/benchmarks/hello.py).
Over kept-alive connections it reports median and p95 of:

1. requests that do not wait on PostMetric, taken in turn: the hello-world reference,
   /healthz, the login page, the warm visitor_123 and visitor_large pages and every warm
   fragment of the visitor view; as ratios to the reference and to /healthz;
2. per visitor, the raw API call against the page with the cache cold (a refresh) and
   warm, taken in turn;
3. throughput under 50 concurrent kept-alive connections (wrk, for a few seconds each)
   of the reference, /healthz and the cached visitor_123 page;
4. how many upstream calls 20 concurrent cold requests for one visitor make.

Taking measurements in turn puts drift in the machine's speed on all of them alike. It
measures; it does not pass or fail.
"""
from __future__ import annotations

import argparse
import re
import shutil
import statistics
import subprocess
import tempfile
import threading
import time
from pathlib import Path
from typing import Callable

import requests

from dashboard.demo import DEMO_API_KEY, LARGE_VISITOR_ID, RETURNING_VISITOR_ID, FakeApiServer
from tests.support.serving import dashboard_env, logged_in_session, served_dashboard, serving

VISITORS = ("visitor_123", LARGE_VISITOR_ID)
REFERENCE = "hello-world reference"


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


def getter(session: requests.Session, url: str, sizes: dict[str, int] | None = None, name: str = "", **headers: str) -> Callable[[], None]:
    """A call that GETs ``url`` on ``session`` (kept alive), insists on a 200 and notes
    the size of the body in ``sizes[name]``."""

    def call() -> None:
        response = session.get(url, headers=headers, timeout=10)
        if response.status_code != 200:
            raise SystemExit(f"{url} answered {response.status_code}")
        if sizes is not None:
            sizes[name] = len(response.content)

    return call


def first_session_id(api_url: str, visitor_id: str) -> str:
    answer = requests.get(
        f"{api_url}/api/v1/visitor", params={"visitorId": visitor_id}, headers={"Authorization": f"Bearer {DEMO_API_KEY}"}, timeout=10
    )
    return answer.json()["data"]["sessions"][0]["sessionId"]


def own_work(url: str, hello: str, api_url: str, agent: requests.Session, repeat: int) -> list[tuple[str, float, float, int]]:
    """Section 1: (name, median, p95, bytes) of every request that does not wait on PostMetric."""
    anonymous, reference = requests.Session(), requests.Session()
    large = f"{url}/visitors/{LARGE_VISITOR_ID}"
    session_id = first_session_id(api_url, LARGE_VISITOR_ID)
    requests_ = {
        REFERENCE: (reference, f"{hello}/", None),
        "/healthz": (anonymous, f"{url}/healthz", None),
        "login page": (anonymous, f"{url}/login", None),
        "visitor_123 page, warm": (agent, f"{url}/visitors/visitor_123", None),
        "visitor_large page, warm": (agent, large, None),
        "fragment: one session (#visitor-detail)": (agent, f"{large}?session={session_id}", "visitor-detail"),
        "fragment: text filter (#timeline)": (agent, f"{large}?q=pricing", "timeline"),
        "fragment: load more (#load-more)": (agent, f"{large}?offset=50", "load-more"),
        "fragment: more sessions (#more-sessions)": (agent, large, "more-sessions"),
    }
    sizes: dict[str, int] = {}
    calls = {}
    for name, (session, target, htmx_target) in requests_.items():
        headers = {"HX-Request": "true", "HX-Target": htmx_target, "HX-Current-URL": large} if htmx_target else {}
        calls[name] = getter(session, target, sizes, name, **headers)
    results = measure(calls, repeat)
    return [(name, *summary(times), sizes[name]) for name, times in results.items()]


def cold_pages(url: str, api_url: str, agent: requests.Session, repeat: int) -> list[tuple[str, str, float, float, float]]:
    """Section 2: per visitor, the raw API call against the page cold and warm."""
    raw = requests.Session()
    headers = {"Authorization": f"Bearer {DEMO_API_KEY}"}
    rows = []
    for visitor_id in VISITORS:
        results = measure(
            {
                "raw API call": getter(raw, f"{api_url}/api/v1/visitor?visitorId={visitor_id}", **headers),
                "page, cache cold": getter(agent, f"{url}/visitors/{visitor_id}?refresh=1"),
                "page, cache warm": getter(agent, f"{url}/visitors/{visitor_id}"),
            },
            repeat,
        )
        raw_median = summary(results["raw API call"])[0]
        for name, times in results.items():
            median, p95 = summary(times)
            rows.append((visitor_id, name, median, p95, median / raw_median))
    return rows


def throughput(target: str, cookie: str | None, connections: int, seconds: int) -> float:
    """Requests per second that wrk gets from ``target`` over ``connections`` kept-alive
    connections for ``seconds`` (loopback only; bounded in time)."""
    command = ["wrk", "-t1", f"-c{connections}", f"-d{seconds}s", "--timeout", "10s", target]
    if cookie:
        command[1:1] = ["-H", f"Cookie: {cookie}"]
    output = subprocess.run(command, capture_output=True, text=True, check=True, timeout=seconds + 30).stdout
    if re.search(r"Non-2xx or 3xx responses", output):
        raise SystemExit(f"wrk met failed responses from {target}:\n{output}")
    found = re.search(r"Requests/sec:\s+([\d.]+)", output)
    if found is None:
        raise SystemExit(f"wrk gave no figure for {target}:\n{output}")
    return float(found.group(1))


def coalesced_calls(url: str, api: FakeApiServer, agent: requests.Session) -> int:
    """Section 4: 20 concurrent cold requests for one visitor: how many upstream calls?"""
    api.stats.reset()
    sessions = []
    for _ in range(20):
        session = requests.Session()
        session.cookies.update(agent.cookies)
        sessions.append(session)
    barrier = threading.Barrier(20)

    def cold(session: requests.Session) -> None:
        barrier.wait()
        getter(session, f"{url}/visitors/{RETURNING_VISITOR_ID}")()  # not fetched before

    threads = [threading.Thread(target=cold, args=(s,)) for s in sessions]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return api.stats.calls


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=40)
    parser.add_argument("--latency", type=float, default=0.1)
    parser.add_argument("--connections", type=int, default=50)
    parser.add_argument("--load-seconds", type=int, default=5, help="how long wrk loads each target")
    args = parser.parse_args()
    wrk = shutil.which("wrk")

    with (
        FakeApiServer(latency=args.latency, rate_limit=10**9) as api,
        tempfile.TemporaryDirectory() as tmp,
        # A budget far above the run's traffic: this measures the dashboard, not the budget.
        served_dashboard(Path(tmp), api.url, POSTMETRIC_BUDGET_PER_MINUTE="100000") as url,
        serving(dashboard_env(Path(tmp), api.url), program=("tests.benchmarks.hello",)) as hello,
    ):
        agent = logged_in_session(url)
        own = own_work(url, hello, api.url, agent, args.repeat)
        cold = cold_pages(url, api.url, agent, args.repeat)
        rates: dict[str, float] = {}
        if wrk:
            cookie = "; ".join(f"{name}={value}" for name, value in agent.cookies.items())
            rates[REFERENCE] = throughput(f"{hello}/", None, args.connections, args.load_seconds)
            rates["/healthz"] = throughput(f"{url}/healthz", None, args.connections, args.load_seconds)
            rates["visitor_123 page, cached"] = throughput(f"{url}/visitors/visitor_123", cookie, args.connections, args.load_seconds)
        calls = coalesced_calls(url, api, agent)

    print(f"\nVisitor Lookup benchmark: {args.repeat} requests each, upstream latency {args.latency * 1000:.0f} ms, dashboard serve (gunicorn gthread)\n")
    reference = next(median for name, median, _, _ in own if name == REFERENCE)
    healthz = next(median for name, median, _, _ in own if name == "/healthz")
    print("| request (kept alive, nothing asked of PostMetric) | median ms | p95 ms | bytes | × reference | × /healthz |")
    print("|---|---:|---:|---:|---:|---:|")
    for name, median, p95, size in own:
        print(f"| {name} | {median * 1000:.2f} | {p95 * 1000:.2f} | {size:,} | {median / reference:.2f} | {median / healthz:.2f} |")
    print("\n| visitor | measurement | median ms | p95 ms | × raw median |")
    print("|---|---|---:|---:|---:|")
    for visitor_id, name, median, p95, ratio in cold:
        print(f"| {visitor_id} | {name} | {median * 1000:.1f} | {p95 * 1000:.1f} | {ratio:.3f} |")
    if rates:
        print(f"\n| under {args.connections} connections, {args.load_seconds} s each (wrk) | requests/s | of the reference |")
        print("|---|---:|---:|")
        for name, rate in rates.items():
            print(f"| {name} | {rate:,.0f} | {rate / rates[REFERENCE]:.1%} |")
    else:
        print("\nThroughput not measured: wrk is not installed (`make bench` installs it where apt is at hand).")
    print(f"\n20 concurrent cold requests for one visitor made {calls} upstream call(s).")


if __name__ == "__main__":
    main()
