"""The bundled PostMetric stand-in, exercised over a real local port with ``requests``."""
from __future__ import annotations

import json
import re
import signal
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from datetime import datetime, timedelta, timezone
from typing import Any

import pytest
import requests

from dashboard.demo import (
    DEMO_API_KEY,
    DEMO_VISITORS,
    FAILURE_VISITORS,
    ODD_VISITOR_ID,
    RETURNING_VISITOR_ID,
    FakeApiServer,
    build_visitor_payload,
    create_fake_api,
)
from dashboard.demo.data import BIDI_CHARS, CONTROL_CHARS, HOSTILE_STRINGS, LONG_PATH, LONG_TITLE
from tests.support.waiting import wait_until

AUTH = {"Authorization": f"Bearer {DEMO_API_KEY}"}
MS_Z = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$")
FIXED_NOW = datetime(2024, 6, 1, 12, 0, 0, 123456, tzinfo=timezone.utc)


class FakeClock:
    """A clock the test moves by hand."""

    def __init__(self, now: datetime = FIXED_NOW) -> None:
        self.now = now

    def __call__(self) -> datetime:
        return self.now

    def advance(self, **delta: float) -> None:
        self.now += timedelta(**delta)


@pytest.fixture
def start_server() -> Iterator[Callable[..., FakeApiServer]]:
    """Start stand-ins with the given ``create_fake_api`` arguments; all stop at teardown."""
    servers: list[FakeApiServer] = []

    def start(**kwargs: Any) -> FakeApiServer:
        server = FakeApiServer(**kwargs).start()
        servers.append(server)
        return server

    yield start
    for server in servers:
        server.stop()


@pytest.fixture
def server(start_server: Callable[..., FakeApiServer]) -> FakeApiServer:
    return start_server(clock=FakeClock(), slow_seconds=0.2)


def get(server: FakeApiServer, visitor_id: str | None, headers: dict[str, str] | None = AUTH, **kw: Any) -> requests.Response:
    params = {} if visitor_id is None else {"visitorId": visitor_id}
    return requests.get(f"{server.url}/api/v1/visitor", params=params, headers=headers, timeout=5, **kw)


def data_of(response: requests.Response) -> dict[str, Any]:
    assert response.status_code == 200, response.text[:200]
    body = response.json()
    assert body["status"] == "success"
    return body["data"]


def in_window(view: dict[str, Any], session: dict[str, Any]) -> bool:
    return session["firstVisitAt"] <= view["timestamp"] <= session["lastSeenAt"]


def assert_newest_first(data: dict[str, Any]) -> None:
    starts = [s["firstVisitAt"] for s in data["sessions"]]
    stamps = [v["timestamp"] for v in data["pageViews"]]
    assert starts == sorted(starts, reverse=True)
    assert stamps == sorted(stamps, reverse=True)


# --- the documented example ---------------------------------------------------------


def test_visitor_123_matches_the_documented_example(server: FakeApiServer) -> None:
    response = get(server, "visitor_123")
    assert response.headers["Content-Type"].startswith("application/json")
    data = data_of(response)
    assert list(data) == ["visitorId", "sessionCount", "pageViewCount", "firstVisit", "lastVisit", "sessions", "pageViews"]
    assert (data["visitorId"], data["sessionCount"], data["pageViewCount"]) == ("visitor_123", 5, 42)
    assert (len(data["sessions"]), len(data["pageViews"])) == (5, 42)
    assert data["firstVisit"] == "2024-01-15T10:30:00.000Z"
    assert data["lastVisit"] == "2024-01-20T14:22:00.000Z"
    assert data["sessions"][-1] == {
        "sessionId": "session_456",
        "firstVisitAt": "2024-01-15T10:30:00.000Z",
        "lastSeenAt": "2024-01-15T10:45:00.000Z",
        "pageViews": 8,
        "duration": 900,
        "device": "desktop",
        "browser": "chrome",
        "os": "windows",
        "country": "US",
    }
    assert data["pageViews"][-1] == {
        "path": "/",
        "title": "Homepage",
        "timestamp": "2024-01-15T10:30:00.000Z",
        "referrer": "https://google.com",
    }
    assert_newest_first(data)
    for stamp in [data["firstVisit"], data["lastVisit"]] + [
        s[k] for s in data["sessions"] for k in ("firstVisitAt", "lastSeenAt")
    ] + [v["timestamp"] for v in data["pageViews"]]:
        assert MS_Z.match(stamp), stamp


def test_visitor_123_windows_hold_their_views_but_one(server: FakeApiServer) -> None:
    data = data_of(get(server, "visitor_123"))
    for session in data["sessions"]:
        held = [v for v in data["pageViews"] if in_window(v, session)]
        assert len(held) == session["pageViews"]
        assert session["duration"] == round(
            (datetime.fromisoformat(session["lastSeenAt"]) - datetime.fromisoformat(session["firstVisitAt"])).total_seconds()
        )
    orphans = [v for v in data["pageViews"] if not any(in_window(v, s) for s in data["sessions"])]
    assert [v["path"] for v in orphans] == ["/order-status"]
    # Optional fields are omitted, never null.
    assert any("title" not in v for v in data["pageViews"])
    assert any("referrer" not in v for v in data["pageViews"])
    assert all(value is not None for v in data["pageViews"] for value in v.values())


# --- other demo visitors ------------------------------------------------------------


def test_unknown_visitor_has_no_first_or_last_visit(server: FakeApiServer) -> None:
    assert get(server, "visitor_unknown").json() == {
        "status": "success",
        "data": {"visitorId": "visitor_unknown", "sessionCount": 0, "pageViewCount": 0, "sessions": [], "pageViews": []},
    }
    assert build_visitor_payload("visitor_unknown", FIXED_NOW) is None


def test_returning_visitor(server: FakeApiServer) -> None:
    data = data_of(get(server, RETURNING_VISITOR_ID))
    assert uuid.UUID(RETURNING_VISITOR_ID).version == 4
    sessions = data["sessions"]
    assert {s["device"] for s in sessions} == {"desktop", "mobile", "tablet"}
    assert len({s["browser"] for s in sessions}) >= 3 and len({s["os"] for s in sessions}) >= 3
    countries = [s["country"] for s in sessions]
    assert None in countries and len(set(countries) - {None}) >= 3
    span = datetime.fromisoformat(data["lastVisit"]) - datetime.fromisoformat(data["firstVisit"])
    assert span > timedelta(weeks=3)
    assert_newest_first(data)
    assert data == data_of(get(server, RETURNING_VISITOR_ID))  # deterministic


def test_live_visitor_is_relative_to_the_clock(start_server: Callable[..., FakeApiServer]) -> None:
    clock = FakeClock(datetime(2031, 3, 4, 5, 6, 7, tzinfo=timezone.utc))
    data = data_of(get(start_server(clock=clock), "visitor_live"))
    last = datetime.fromisoformat(data["lastVisit"])
    assert clock.now - timedelta(minutes=3) <= last <= clock.now - timedelta(minutes=2)
    current = data["sessions"][0]
    assert current["lastSeenAt"] == data["lastVisit"] == data["pageViews"][0]["timestamp"]
    assert datetime.fromisoformat(current["firstVisitAt"]) < last
    assert_newest_first(data)


def test_odd_visitor_id_round_trips(server: FakeApiServer) -> None:
    data = data_of(get(server, ODD_VISITOR_ID))
    assert data["visitorId"] == ODD_VISITOR_ID and data["sessionCount"] > 0
    assert server.stats.calls_by_visitor[ODD_VISITOR_ID] == 1


def test_hostile_visitor_carries_hostile_strings(server: FakeApiServer) -> None:
    response = get(server, "visitor_hostile")
    data = data_of(response)
    texts = [str(v.get(k)) for v in data["pageViews"] for k in ("path", "title", "referrer")]
    blob = "\n".join(texts)
    for needle in HOSTILE_STRINGS:
        assert needle in blob, needle
    assert LONG_TITLE in texts and len(LONG_TITLE) == 5000
    assert LONG_PATH in texts and len(LONG_PATH) == 3000
    assert all(ch in blob for ch in CONTROL_CHARS)
    assert all(ch in blob for ch in BIDI_CHARS)
    assert any((v.get("referrer") or "").startswith("javascript:") for v in data["pageViews"])
    assert any((v.get("referrer") or "").startswith("data:") for v in data["pageViews"])
    nulls = [v for v in data["pageViews"] if "title" in v and v["title"] is None]
    assert len(nulls) == 1 and nulls[0]["referrer"] is None


def test_demo_visitor_list_and_key() -> None:
    assert re.fullmatch(r"pm_[0-9a-f]{64}", DEMO_API_KEY)
    ids = [v.visitor_id for v in DEMO_VISITORS]
    for wanted in ["visitor_123", "visitor_live", "visitor_unknown", "visitor_large", "visitor_huge", "visitor_hostile"]:
        assert wanted in ids
    assert all(v.label and v.description for v in DEMO_VISITORS + FAILURE_VISITORS)


# --- caps ---------------------------------------------------------------------------


def test_large_visitor_is_exactly_at_the_caps(server: FakeApiServer) -> None:
    data = data_of(get(server, "visitor_large"))
    assert (data["sessionCount"], data["pageViewCount"]) == (100, 1000)
    assert (len(data["sessions"]), len(data["pageViews"])) == (100, 1000)
    assert_newest_first(data)


def test_huge_visitor_caps_arrays_but_reports_true_totals(server: FakeApiServer) -> None:
    data = data_of(get(server, "visitor_huge"))
    assert (data["sessionCount"], data["pageViewCount"]) == (2000, 20000)
    assert (len(data["sessions"]), len(data["pageViews"])) == (100, 1000)
    assert_newest_first(data)
    full = build_visitor_payload("visitor_huge", FIXED_NOW)
    assert full is not None
    assert data["sessions"] == full["sessions"][:100]
    assert data["pageViews"] == full["pageViews"][:1000]


def test_caps_none_returns_everything(start_server: Callable[..., FakeApiServer]) -> None:
    data = data_of(get(start_server(caps=None), "visitor_huge"))
    assert (data["sessionCount"], data["pageViewCount"]) == (2000, 20000)
    assert (len(data["sessions"]), len(data["pageViews"])) == (2000, 20000)


def test_small_caps_shrink_the_counts_like_postmetric(start_server: Callable[..., FakeApiServer]) -> None:
    data = data_of(get(start_server(caps=(2, 10)), "visitor_123"))
    assert (data["sessionCount"], data["pageViewCount"]) == (2, 10)
    assert [s["sessionId"] for s in data["sessions"]] == ["session_460", "session_459"]
    assert data["pageViews"][0]["timestamp"] == "2024-01-20T14:22:00.000Z"


# --- auth and validation ------------------------------------------------------------

UNAUTHORIZED = {"status": "error", "error": {"code": 401, "message": "Unauthorized. Invalid or missing API key."}}
MISSING_ID = {"status": "error", "error": {"code": 400, "message": "visitorId parameter is required"}}


@pytest.mark.parametrize(
    "headers",
    [
        None,
        {"Authorization": ""},
        {"Authorization": DEMO_API_KEY},
        {"Authorization": f"Basic {DEMO_API_KEY}"},
        {"Authorization": "Bearer pm_" + "0" * 64},
        {"Authorization": "Bearer "},
    ],
)
def test_missing_or_wrong_key_is_401(server: FakeApiServer, headers: dict[str, str] | None) -> None:
    response = get(server, "visitor_123", headers=headers)
    assert response.status_code == 401
    assert response.json() == UNAUTHORIZED
    assert "X-RateLimit-Limit" not in response.headers


def test_several_keys_are_accepted(start_server: Callable[..., FakeApiServer]) -> None:
    server = start_server(api_keys=["pm_" + "a" * 64, "pm_" + "b" * 64])
    assert get(server, "visitor_123", headers={"Authorization": "Bearer pm_" + "b" * 64}).status_code == 200
    assert get(server, "visitor_123").status_code == 401  # the demo key is not among them


def test_missing_visitor_id_is_400_after_auth(server: FakeApiServer) -> None:
    assert get(server, None, headers=None).status_code == 401  # auth is checked first
    for visitor_id in (None, ""):
        response = get(server, visitor_id)
        assert response.status_code == 400
        assert response.json() == MISSING_ID


def test_healthz(server: FakeApiServer) -> None:
    response = requests.get(f"{server.url}/healthz", timeout=5)
    assert (response.status_code, response.text) == (200, "ok")


# --- failure modes ------------------------------------------------------------------


def envelope(code: int) -> Callable[[requests.Response], None]:
    def check(response: requests.Response) -> None:
        body = response.json()
        assert body["status"] == "error" and body["error"]["code"] == code and body["error"]["message"]

    return check


def html(response: requests.Response) -> None:
    assert response.headers["Content-Type"].startswith("text/html")
    assert "<html" in response.text.lower()
    with pytest.raises(ValueError):
        response.json()


def empty(response: requests.Response) -> None:
    assert response.content == b""


def truncated(response: requests.Response) -> None:
    assert response.text.startswith('{"status":"success"')
    with pytest.raises(ValueError):
        json.loads(response.text)


def wrong_types(response: requests.Response) -> None:
    assert response.json()["data"]["sessionCount"] == "five"


def sessions_object(response: requests.Response) -> None:
    sessions = response.json()["data"]["sessions"]
    assert isinstance(sessions, dict) and "session_456" in sessions


def null_entries(response: requests.Response) -> None:
    data = response.json()["data"]
    assert data["sessions"] == [None] and data["pageViews"] == [None]


def like_example(visitor_id: str) -> Callable[[requests.Response], None]:
    def check(response: requests.Response) -> None:
        data = response.json()["data"]
        assert (data["visitorId"], data["sessionCount"], data["pageViewCount"]) == (visitor_id, 5, 42)

    return check


FAILURES: dict[str, tuple[int, Callable[[requests.Response], None], dict[str, str | None]]] = {
    # visitor ID: (status, body check, headers that must have this value; None = absent)
    "fail-400": (400, envelope(400), {}),
    "fail-401": (401, envelope(401), {}),
    "fail-403": (403, envelope(403), {}),
    "fail-404": (404, envelope(404), {}),
    "fail-404-html": (404, html, {"X-RateLimit-Limit": None}),
    "fail-429": (429, envelope(429), {"Retry-After": "30"}),
    "fail-429-bare": (429, envelope(429), {"Retry-After": None, "X-RateLimit-Remaining": None}),
    "fail-500": (500, envelope(500), {}),
    "fail-502": (502, html, {"X-RateLimit-Limit": None}),
    "fail-503": (503, envelope(503), {"Retry-After": "2"}),
    "fail-504": (504, html, {}),
    "fail-empty": (200, empty, {}),
    "fail-truncated": (200, truncated, {}),
    "fail-html": (200, html, {}),
    "fail-wrong-types": (200, wrong_types, {}),
    "fail-sessions-object": (200, sessions_object, {}),
    "fail-null-entries": (200, null_entries, {}),
    "fail-slow": (200, like_example("fail-slow"), {}),
}


@pytest.mark.parametrize("visitor_id", list(FAILURES))
def test_failure_modes(server: FakeApiServer, visitor_id: str) -> None:
    status, check, headers = FAILURES[visitor_id]
    response = get(server, visitor_id)
    assert response.status_code == status
    check(response)
    for name, value in headers.items():
        assert response.headers.get(name) == value, name


def test_every_documented_failure_is_tested() -> None:
    tested = set(FAILURES) | {"fail-huge-body", "fail-flaky-2", "fail-drop"}
    assert {v.visitor_id for v in FAILURE_VISITORS} == tested


def test_other_fail_ids_are_unknown_visitors(server: FakeApiServer) -> None:
    assert data_of(get(server, "fail-nothing"))["sessionCount"] == 0


def test_fail_slow_waits_and_stop_interrupts_it(start_server: Callable[..., FakeApiServer]) -> None:
    server = start_server(slow_seconds=0.3)
    began = time.monotonic()
    assert get(server, "fail-slow").status_code == 200
    assert time.monotonic() - began >= 0.3

    slow = start_server(slow_seconds=30)
    results: list[int] = []
    worker = threading.Thread(target=lambda: results.append(get(slow, "fail-slow").status_code))
    worker.start()
    wait_until(lambda: slow.stats.calls > 0)
    began = time.monotonic()
    slow.stop()
    worker.join(timeout=5)
    assert time.monotonic() - began < 1 and results == [200]


def test_fail_flaky_n(server: FakeApiServer) -> None:
    assert [get(server, "fail-flaky-2").status_code for _ in range(4)] == [503, 503, 200, 200]
    like_example("fail-flaky-2")(get(server, "fail-flaky-2"))
    # Counted per exact ID.
    assert get(server, "fail-flaky-1").status_code == 503
    assert get(server, "fail-flaky-1").status_code == 200
    server.stats.reset()
    assert get(server, "fail-flaky-1").status_code == 503


def test_fail_huge_body_streams_valid_json(server: FakeApiServer) -> None:
    with get(server, "fail-huge-body", stream=True) as response:
        assert response.status_code == 200
        assert "Content-Length" not in response.headers  # chunked: a client must cap what it reads
        body = b"".join(response.iter_content(1 << 20))
    assert 24_000_000 < len(body) < 26_000_000
    data = json.loads(body)["data"]
    assert data["pageViewCount"] == len(data["pageViews"]) > 100_000


def test_fail_drop_closes_the_connection(server: FakeApiServer) -> None:
    with pytest.raises(requests.ConnectionError):
        get(server, "fail-drop")
    assert get(server, "visitor_123").status_code == 200  # the server carries on


def test_fail_drop_without_a_socket_is_an_empty_502() -> None:
    client = create_fake_api().test_client()
    response = client.get("/api/v1/visitor?visitorId=fail-drop", headers=AUTH)
    assert (response.status_code, response.data) == (502, b"")


# --- rate limit, latency, stats, server lifecycle -----------------------------------


def test_rate_limit_headers_and_429(start_server: Callable[..., FakeApiServer]) -> None:
    clock = FakeClock(datetime(2024, 6, 1, 12, 0, 0, tzinfo=timezone.utc))
    server = start_server(clock=clock, rate_limit=3)
    window_end = str(int(clock.now.timestamp()) + 60)
    seen = []
    for _ in range(3):
        response = get(server, "visitor_123")
        assert response.status_code == 200
        assert response.headers["X-RateLimit-Limit"] == "3"
        assert response.headers["X-RateLimit-Reset"] == window_end
        seen.append(response.headers["X-RateLimit-Remaining"])
        clock.advance(seconds=10)
    assert seen == ["2", "1", "0"]
    response = get(server, "visitor_123")
    assert response.status_code == 429
    assert response.json()["error"] == {"code": 429, "message": "Too many requests. Rate limit exceeded."}
    assert response.headers["Retry-After"] == "30"
    assert response.headers["X-RateLimit-Remaining"] == "0"
    assert server.stats.rate_limited == 1 and server.stats.calls == 4
    # Budgets are per key.
    other = start_server(clock=clock, rate_limit=3, api_keys=[DEMO_API_KEY, "pm_" + "c" * 64])
    for _ in range(3):
        assert get(other, "x").status_code == 200
    assert get(other, "x").status_code == 429
    assert get(other, "x", headers={"Authorization": "Bearer pm_" + "c" * 64}).status_code == 200
    # A new window opens after a minute.
    clock.advance(seconds=31)
    response = get(server, "visitor_123")
    assert response.status_code == 200 and response.headers["X-RateLimit-Remaining"] == "2"


def test_default_budget_is_100_per_minute(start_server: Callable[..., FakeApiServer]) -> None:
    server = start_server(clock=FakeClock())
    with requests.Session() as session:
        session.headers.update(AUTH)
        url = f"{server.url}/api/v1/visitor"
        statuses = [session.get(url, params={"visitorId": "visitor_unknown"}, timeout=5).status_code for _ in range(101)]
    assert statuses == [200] * 100 + [429]
    assert server.stats.calls == 101


def test_latency(start_server: Callable[..., FakeApiServer]) -> None:
    server = start_server(latency=0.2)
    began = time.monotonic()
    assert get(server, "visitor_123").status_code == 200
    assert time.monotonic() - began >= 0.2
    began = time.monotonic()
    requests.get(f"{server.url}/healthz", timeout=5)
    assert time.monotonic() - began < 0.2  # only API requests are slowed


def test_stats_count_every_request(server: FakeApiServer) -> None:
    get(server, "visitor_123")
    get(server, "visitor_123", headers=None)
    get(server, None)
    get(server, "fail-500")
    stats = server.stats
    assert stats is server.app.extensions["fake_api"]
    assert stats.calls == 4
    assert stats.calls_by_visitor == {"visitor_123": 2, "": 1, "fail-500": 1}
    stats.reset()
    assert stats.calls == 0 and not stats.calls_by_visitor


def test_stats_are_thread_safe(server: FakeApiServer) -> None:
    threads = [threading.Thread(target=lambda: [get(server, "visitor_unknown") for _ in range(5)]) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert server.stats.calls == 40 == server.stats.calls_by_visitor["visitor_unknown"]


def test_server_starts_and_stops_fast_and_restarts() -> None:
    began = time.monotonic()
    with FakeApiServer() as server:
        assert re.fullmatch(r"http://127\.0\.0\.1:\d+", server.url) and server.port > 0
        assert get(server, "visitor_123").status_code == 200
    assert time.monotonic() - began < 0.5
    with pytest.raises(requests.ConnectionError):
        requests.get(f"http://127.0.0.1:{server.port}/healthz", timeout=5)
    with pytest.raises(RuntimeError):
        server.url  # noqa: B018 - not running, no URL
    server.start()  # reusable
    try:
        assert get(server, "visitor_123").status_code == 200
        assert server.stats.calls == 2  # same app, same stats
    finally:
        server.stop()
    server.stop()  # idempotent


def test_server_takes_an_existing_app() -> None:
    app = create_fake_api(caps=(1, 1))
    with FakeApiServer(app) as server:
        assert data_of(get(server, "visitor_123"))["pageViewCount"] == 1
    with pytest.raises(TypeError):
        FakeApiServer(app, latency=1.0)


def test_serve_prints_its_url_and_stops_on_ctrl_c() -> None:
    process = subprocess.Popen(
        [sys.executable, "-c", "from dashboard.demo import serve; serve(0)"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        assert process.stdout is not None
        line = process.stdout.readline()
        match = re.fullmatch(r"PostMetric stand-in on (http://127\.0\.0\.1:\d+) \(key: (pm_[0-9a-f]{64})\)\n", line)
        assert match, line
        assert match.group(2) == DEMO_API_KEY
        response = requests.get(f"{match.group(1)}/api/v1/visitor", params={"visitorId": "visitor_123"}, headers=AUTH, timeout=5)
        assert response.status_code == 200
        process.send_signal(signal.SIGINT)
        assert process.wait(timeout=5) == 0
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()
        process.stdout.close()  # type: ignore[union-attr]
        process.stderr.close()  # type: ignore[union-attr]
