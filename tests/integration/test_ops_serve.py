"""A real `dashboard serve` (gunicorn, loopback, free port): Prometheus metrics that
add up across two workers, behind their token; and a graceful shutdown in which
/readyz turns 503 at once while the look-ups in flight finish."""
from __future__ import annotations

import signal
import threading
from concurrent.futures import ThreadPoolExecutor

import requests
from prometheus_client.parser import text_string_to_metric_families

from dashboard.demo import FakeApiServer
from tests.support.serving import logged_in_session, served_dashboard
from tests.support.waiting import wait_until

TOKEN = "metrics-token-0123456789abcdef"


def scrape(url: str) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    """One scrape on a new connection (so any worker may answer): sample -> value."""
    with requests.Session() as session:
        response = session.get(f"{url}/metrics", headers={"Authorization": f"Bearer {TOKEN}"}, timeout=10)
    assert response.status_code == 200
    return {
        (sample.name, tuple(sorted(sample.labels.items()))): sample.value
        for family in text_string_to_metric_families(response.text)
        for sample in family.samples
    }


def total(samples, name: str, **labels: str) -> float:
    return sum(value for (sample, sample_labels), value in samples.items() if sample == name and labels.items() <= dict(sample_labels).items())


def test_metrics_are_protected_and_add_up_across_two_workers(tmp_path, fake_api):
    serve_args = ("--workers", "2", "--drain-seconds", "0")
    with served_dashboard(tmp_path, fake_api.url, serve_args=serve_args, METRICS_TOKEN=TOKEN, POSTMETRIC_DEADLINE="1") as url:
        assert requests.get(f"{url}/metrics", timeout=5).status_code == 401
        assert requests.get(f"{url}/metrics", headers={"Authorization": "Bearer wrong-token-0123456789"}, timeout=5).status_code == 401
        before = scrape(url)

        # Six connections, which the kernel spreads over the two workers: each looks
        # visitor_123 up twice (a worker's cache misses once, then hits) and meets one
        # upstream failure.
        sessions = [logged_in_session(url) for _ in range(6)]
        found, failed = [], []
        for session in sessions:
            found += [session.get(f"{url}/visitors/visitor_123", timeout=10).status_code for _ in range(2)]
            failed.append(session.get(f"{url}/visitors/fail-500", timeout=10).status_code)
        assert found == [200] * 12 and all(status >= 500 for status in failed)
        after = [scrape(url) for _ in range(4)]  # whichever worker answers, the same sums

        for samples in after:
            lookups = total(samples, "dashboard_cache_lookups_total") - total(before, "dashboard_cache_lookups_total")
            hits = total(samples, "dashboard_cache_lookups_total", outcome="hit") - total(before, "dashboard_cache_lookups_total", outcome="hit")
            assert lookups == 18  # 12 of visitor_123 and 6 of fail-500, each counted once
            misses = 12 - hits  # one per worker that served visitor_123
            assert 1 <= misses <= 2
            errors = total(samples, "dashboard_upstream_calls_total", site="default", outcome="server_error")
            assert errors == fake_api.stats.calls_by_visitor["fail-500"] >= 6
            ok_calls = total(samples, "dashboard_upstream_calls_total", site="default", outcome="ok")
            assert ok_calls == fake_api.stats.calls_by_visitor["visitor_123"] == misses
            assert total(samples, "dashboard_request_seconds_count", route="/visitors/<visitor_id>") >= 18
            assert total(samples, "dashboard_agents_signed_in") == 1
        for session in sessions:
            session.close()


def test_sigterm_turns_readyz_503_at_once_and_the_look_ups_in_flight_finish(tmp_path):
    processes: list = []
    with FakeApiServer(latency=2.0) as slow_api:
        with served_dashboard(tmp_path, slow_api.url, serve_args=("--drain-seconds", "3"), process_out=processes) as url:
            assert requests.get(f"{url}/readyz", timeout=5).json()["status"] == "ready"
            session = logged_in_session(url)
            cookies = session.cookies.get_dict()

            def look_up(number: int) -> int:
                return requests.get(f"{url}/visitors/visitor_{number}", cookies=cookies, timeout=30).status_code

            with ThreadPoolExecutor(max_workers=5) as pool:
                in_flight = [pool.submit(look_up, number) for number in range(5)]
                wait_until(lambda: slow_api.stats.calls >= 5, timeout=10, message="the look-ups did not reach PostMetric")
                processes[0].send_signal(signal.SIGTERM)
                wait_until(lambda: requests.get(f"{url}/readyz", timeout=5).status_code == 503, timeout=1.5, message="/readyz did not turn 503 at once")
                assert requests.get(f"{url}/readyz", timeout=5).json() == {"status": "draining"}
                assert [future.result(timeout=30) for future in in_flight] == [200] * 5
            assert processes[0].wait(timeout=20) == 0
