"""The PostMetric client against a real local HTTP server with scripted answers."""
from __future__ import annotations

import copy
import json
import logging
import random
import socket
import threading
import time
from collections.abc import Iterator
from datetime import timezone
from urllib.parse import quote_plus

import pytest
import requests
import urllib3

from dashboard.postmetric.budget import RateBudget
from dashboard.postmetric.client import CONNECTION_TEST_ID, PostMetricClient, RetryNotice
from dashboard.postmetric.errors import (
    BadGateway,
    BadRequest,
    BudgetExhausted,
    ClientError,
    ConnectionFailed,
    DeadlineExceeded,
    EndpointNotFound,
    Forbidden,
    GatewayTimeout,
    InvalidResponse,
    PostMetricError,
    RateLimited,
    ResponseTooLarge,
    ServerError,
    ServiceUnavailable,
    Unauthorized,
    UpstreamTimeout,
)

from tests.support.scripted_server import Reply, ScriptedServer, json_reply
from tests.support.sockets import unaccepting_port

API_KEY = "pm_" + "0123456789abcdef" * 4

DOCUMENTED = {
    "status": "success",
    "data": {
        "visitorId": "visitor_123",
        "sessionCount": 1,
        "pageViewCount": 1,
        "firstVisit": "2024-01-15T10:30:00.000Z",
        "lastVisit": "2024-01-15T10:45:00.000Z",
        "sessions": [
            {
                "sessionId": "session_456",
                "firstVisitAt": "2024-01-15T10:30:00.000Z",
                "lastSeenAt": "2024-01-15T10:45:00.000Z",
                "pageViews": 1,
                "duration": 900,
                "device": "desktop",
                "browser": "chrome",
                "os": "windows",
                "country": "US",
            }
        ],
        "pageViews": [{"path": "/", "title": "Homepage", "timestamp": "2024-01-15T10:30:00.000Z", "referrer": "https://google.com"}],
    },
}


def ok(visitor_id: str = "visitor_123", **headers: str) -> Reply:
    body = copy.deepcopy(DOCUMENTED)
    body["data"]["visitorId"] = visitor_id
    return json_reply(200, body, headers=headers)


def envelope(status: int, message: str, **kwargs) -> Reply:
    return json_reply(status, {"status": "error", "error": {"code": status, "message": message}}, **kwargs)


class FakeTime:
    """A clock that only moves when the client sleeps: retries without waiting."""

    def __init__(self) -> None:
        self.now = 0.0
        self.sleeps: list[float] = []

    def clock(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.sleeps.append(seconds)
        self.now += seconds


@pytest.fixture
def server() -> Iterator[ScriptedServer]:
    with ScriptedServer() as scripted:
        yield scripted


@pytest.fixture
def fake_time() -> FakeTime:
    return FakeTime()


@pytest.fixture
def make_client(server, fake_time):
    clients: list[PostMetricClient] = []

    def make(base_url: str | None = None, **kwargs) -> PostMetricClient:
        options = {
            "connect_timeout": 1.0,
            "read_timeout": 1.0,
            "deadline": 10.0,
            "sleep": fake_time.sleep,
            "clock": fake_time.clock,
            "rng": random.Random(7),
        }
        options.update(kwargs)
        client = PostMetricClient(base_url or server.url, API_KEY, **options)
        clients.append(client)
        return client

    yield make
    for client in clients:
        client.close()


@pytest.fixture
def closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def assert_no_secret(*texts: str) -> None:
    for text in texts:
        assert API_KEY not in text
        assert API_KEY[3:] not in text
        assert "Bearer" not in text


# -- the request ------------------------------------------------------------------


def test_the_request_id_is_sent_as_x_request_id_only_when_given(server, make_client):
    server.script(ok(), ok())
    client = make_client()
    client.fetch_visitor("visitor_123", request_id="req-0123456789")
    client.fetch_visitor("visitor_123")
    sent = [{name.lower(): value for name, value in r.headers.items()}.get("x-request-id") for r in server.requests]
    assert sent == ["req-0123456789", None]


def test_the_observer_hears_each_call_with_its_outcome_and_status(server, make_client):
    heard = []
    server.script(Reply(503), Reply(429), ok())
    with pytest.raises(PostMetricError):
        make_client(observer=lambda outcome, seconds, status: heard.append((outcome, status, seconds >= 0))).fetch_visitor("v")
    assert [(outcome, status) for outcome, status, _ in heard] == [("unavailable", 503), ("rate_limited", 429)]
    assert all(non_negative for *_, non_negative in heard)


@pytest.mark.parametrize("pool_size", [3, 48])
def test_the_connection_pool_holds_as_many_connections_as_asked(make_client, pool_size):
    client = make_client(pool_size=pool_size)
    assert client._session.get_adapter(client.url)._pool_maxsize == pool_size


def test_success_sends_the_key_and_returns_a_typed_visitor(server, make_client):
    server.script(ok())
    fetched = make_client().fetch_visitor("visitor_123")
    (request,) = server.requests
    assert request.method == "GET" and request.path == "/api/v1/visitor"
    assert request.headers["Authorization"] == f"Bearer {API_KEY}"
    assert request.headers["Accept"] == "application/json"
    assert request.headers["User-Agent"] == "VisitorLookup/0.1"
    assert fetched.visitor.visitor_id == "visitor_123"
    assert fetched.visitor.sessions[0].country == "US"
    assert fetched.attempts == 1
    assert fetched.body_bytes == len(json.dumps(DOCUMENTED).encode())
    assert fetched.fetched_at.tzinfo is timezone.utc
    assert fetched.elapsed >= 0


@pytest.mark.parametrize(
    "visitor_id",
    ["a&b=c", "x#fragment", "a/b/../c", "100%25 and %", "with space", "café-é", "日本語", "+plus+", "a?b", "<script>"],
)
def test_visitor_id_is_sent_exactly_and_url_encoded(server, make_client, visitor_id):
    server.script(ok(visitor_id))
    make_client().fetch_visitor(visitor_id)
    (request,) = server.requests
    assert request.args.getlist("visitorId") == [visitor_id]
    assert list(request.args.keys()) == ["visitorId"]
    assert request.raw_query == ("visitorId=" + quote_plus(visitor_id)).encode()


def test_surrounding_white_space_is_trimmed(server, make_client):
    server.script(ok("inner id"))
    make_client().fetch_visitor(" \t inner id \n")
    assert server.requests[0].args["visitorId"] == "inner id"


@pytest.mark.parametrize("visitor_id", ["", "   ", "\n\t"])
def test_empty_id_is_refused_before_any_request(server, make_client, visitor_id):
    with pytest.raises(ValueError):
        make_client().fetch_visitor(visitor_id)
    assert server.requests == []


def test_base_url_with_path_and_trailing_slash(server, make_client):
    server.script(ok())
    make_client(server.url + "/postmetric/").fetch_visitor("v")
    assert server.requests[0].path == "/postmetric/api/v1/visitor"


@pytest.mark.parametrize("base_url", ["", "ftp://x", "localhost:5000", "https://x/?a=1"])
def test_bad_base_urls_are_refused(base_url):
    with pytest.raises(ValueError):
        PostMetricClient(base_url, API_KEY)


def test_repr_shows_no_key(make_client):
    client = make_client()
    assert_no_secret(repr(client), str(client))


# -- answers and their errors --------------------------------------------------------


def test_404_envelope_is_an_unknown_visitor(server, make_client):
    server.script(envelope(404, "Visitor not found"))
    fetched = make_client().fetch_visitor(" who? ")
    assert fetched.visitor.visitor_id == "who?"
    assert fetched.visitor.is_unknown
    assert (fetched.visitor.session_count, fetched.visitor.page_view_count) == (0, 0)
    assert fetched.visitor.first_visit is None and fetched.visitor.last_visit is None


@pytest.mark.parametrize(
    "reply",
    [
        Reply(404, body=b"<!doctype html><h1>Not Found</h1>", content_type="text/html"),
        Reply(404, body=b""),
        json_reply(404, {"message": "no route"}),
    ],
)
def test_404_without_the_envelope_means_a_wrong_base_url(server, make_client, reply):
    server.script(reply)
    with pytest.raises(EndpointNotFound) as info:
        make_client().fetch_visitor("v")
    err = info.value
    assert err.kind == "not_found_endpoint" and err.upstream_status == 404 and not err.retryable
    assert "base URL" in err.message
    assert len(server.requests) == 1


def test_redirects_are_not_followed(server, make_client):
    server.script(Reply(301, headers={"Location": "https://elsewhere.example/api/v1/visitor"}))
    with pytest.raises(EndpointNotFound) as info:
        make_client().fetch_visitor("v")
    assert "redirects" in info.value.message
    assert len(server.requests) == 1


STATUS_CASES = [
    (400, BadRequest, "bad_request", 502, False),
    (401, Unauthorized, "unauthorized", 502, False),
    (403, Forbidden, "forbidden", 502, False),
    (405, ClientError, "client_error", 502, False),
    (410, ClientError, "client_error", 502, False),
    (429, RateLimited, "rate_limited", 429, True),
    (500, ServerError, "server_error", 502, True),
    (501, ServerError, "server_error", 502, True),
    (502, BadGateway, "bad_gateway", 502, True),
    (503, ServiceUnavailable, "unavailable", 503, True),
    (504, GatewayTimeout, "gateway_timeout", 504, True),
]


@pytest.mark.parametrize(("status", "error_type", "kind", "page_status", "retryable"), STATUS_CASES)
def test_each_status_maps_to_its_error(server, make_client, fake_time, status, error_type, kind, page_status, retryable):
    reply = envelope(status, "Something specific happened")

    def answer_near_the_deadline(recorded):
        # PostMetric took nearly the whole deadline (on the client's clock, within its read
        # time-out): too little is left for a retry, so the error comes after one attempt.
        fake_time.now += 0.92
        return reply

    server.handler = answer_near_the_deadline
    with pytest.raises(error_type) as info:
        make_client(deadline=0.95).fetch_visitor("v")
    assert len(server.requests) == 1
    err = info.value
    assert type(err) is error_type
    assert (err.kind, err.status_code, err.retryable, err.upstream_status) == (kind, page_status, retryable, status)
    assert str(err) == err.message and err.title and err.message.endswith(".")
    assert_no_secret(str(err), repr(err))


def test_401_message_tells_the_agent_what_to_do(server, make_client):
    server.script(envelope(401, "Unauthorized. Invalid or missing API key."))
    with pytest.raises(Unauthorized) as info:
        make_client().fetch_visitor("v")
    assert str(info.value) == (
        "PostMetric refused this site's API key. An admin must replace the key in the site "
        "settings; retrying will not help."
    )
    assert info.value.title == "PostMetric rejected the API key"


def test_upstream_message_is_quoted_truncated_and_scrubbed(server, make_client):
    message = f"Key {API_KEY} is wrong; Authorization: Bearer {API_KEY}\x1b[31m " + "x" * 500
    server.script(envelope(500, message))
    with pytest.raises(ServerError) as info:
        make_client().fetch_visitor("v")
    err = info.value
    assert err.upstream_message is not None and len(err.upstream_message) <= 200
    assert err.upstream_message.startswith("Key [redacted] is wrong")
    assert "\x1b" not in err.message
    assert "PostMetric said:" in err.message
    assert_no_secret(str(err), repr(err), err.upstream_message)


def test_a_huge_error_body_is_not_quoted(server, make_client):
    server.script(Reply(500, body=b"<html>" + b"E" * 200_000 + b"</html>", content_type="text/html"))
    with pytest.raises(ServerError) as info:
        make_client(max_body_bytes=1000).fetch_visitor("v")
    assert "EEEE" not in str(info.value) and info.value.upstream_message is None


def test_429_carries_retry_after_and_is_not_retried(server, make_client, fake_time):
    server.script(envelope(429, "Too many requests", headers={"Retry-After": "30"}))
    with pytest.raises(RateLimited) as info:
        make_client().fetch_visitor("v")
    assert info.value.retry_after == 30.0
    assert "try again in 30 s" in str(info.value).lower()
    assert len(server.requests) == 1 and fake_time.sleeps == []


def test_429_without_retry_after_uses_the_reset_header(server, make_client):
    reset = int(time.time()) + 20
    server.script(envelope(429, "Too many requests", headers={"X-RateLimit-Reset": str(reset)}))
    with pytest.raises(RateLimited) as info:
        make_client().fetch_visitor("v")
    assert info.value.retry_after == pytest.approx(20, abs=2)


@pytest.mark.parametrize(
    ("body", "reason"),
    [
        (b"<html><body>Welcome to nginx</body></html>", "HTML"),
        (b"", "empty"),
        (b'{"status": "success", "data": {"visitorId": "v", "sessionC', "truncated"),
        (b'{"status": "success", "data": {"sessionCount": "five"}}', "data.sessionCount is not a whole number"),
    ],
)
def test_unreadable_200_bodies_raise_invalid_response_without_retry(server, make_client, fake_time, body, reason):
    server.script(Reply(200, body=body))
    with pytest.raises(InvalidResponse) as info:
        make_client().fetch_visitor("v")
    assert reason in info.value.reason
    assert info.value.upstream_status == 200
    assert len(server.requests) == 1 and fake_time.sleeps == []


# -- transport failures ----------------------------------------------------------------


def test_connection_refused(closed_port, make_client, fake_time):
    client = make_client(f"http://127.0.0.1:{closed_port}", deadline=2.0)
    with pytest.raises(DeadlineExceeded) as info:
        client.fetch_visitor("v")
    err = info.value
    assert isinstance(err.last_error, ConnectionFailed)
    assert err.last_error.kind == "connection_failed"
    assert err.__cause__ is err.last_error
    assert "refused" in err.message and "kept failing" in err.message
    assert err.attempts == len(fake_time.sleeps) + 1 >= 3
    assert_no_secret(str(err), repr(err))


def test_dns_failure(make_client):
    # RFC 6761: .invalid never resolves.
    with pytest.raises(ConnectionFailed) as info:
        make_client("http://visitor-lookup-test.invalid", deadline=0.01).fetch_visitor("v")
    assert info.value.kind == "dns_failure"
    assert "DNS" in info.value.message and "base URL" in info.value.message


def test_tls_failure_is_not_retried(server, make_client, fake_time):
    # The scripted server speaks plain HTTP: a TLS handshake with it fails.
    with pytest.raises(ConnectionFailed) as info:
        make_client(server.url.replace("http://", "https://")).fetch_visitor("v")
    assert info.value.kind == "tls_failure" and not info.value.retryable
    assert fake_time.sleeps == []


def test_connect_timeout(make_client):
    with unaccepting_port() as port, pytest.raises(UpstreamTimeout) as info:
        make_client(
            f"http://127.0.0.1:{port}", connect_timeout=0.2, deadline=0.2, clock=time.monotonic, sleep=time.sleep
        ).fetch_visitor("v")
    err = info.value
    assert (err.kind, err.phase, err.status_code) == ("connect_timeout", "connect", 504)
    assert "connection" in err.message


def test_read_timeout_is_raised_at_once(server, make_client, fake_time):
    server.script(Reply(delay=2.0, body=json.dumps(DOCUMENTED).encode()), ok())
    started = time.monotonic()
    with pytest.raises(UpstreamTimeout) as info:
        make_client(read_timeout=0.2).fetch_visitor("v")
    assert time.monotonic() - started < 1.5
    err = info.value
    assert (err.kind, err.phase, err.seconds, err.status_code, err.retryable) == ("timeout", "read", 0.2, 504, True)
    assert str(err) == "PostMetric did not answer within 0.2 s. It may be busy; try again in a moment."
    assert len(server.requests) == 1 and fake_time.sleeps == []


def test_a_body_that_trickles_in_is_cut_at_the_read_timeout(server):
    chunks = (b" " * 10 for _ in range(100))
    server.script(Reply(200, body=chunks, chunk_delay=0.05))
    client = PostMetricClient(server.url, API_KEY, read_timeout=0.3, deadline=5)
    started = time.monotonic()
    with pytest.raises(UpstreamTimeout) as info, client:
        client.fetch_visitor("v")
    assert info.value.phase == "read"
    assert time.monotonic() - started < 1.5


def test_dropped_connection_is_retried(server, make_client, fake_time):
    server.script(Reply(drop=True), ok())
    fetched = make_client().fetch_visitor("v")
    assert fetched.attempts == 2 and len(fake_time.sleeps) == 1


# -- size cap --------------------------------------------------------------------------


def test_streamed_body_over_the_cap_is_refused(server, make_client):
    produced = 0
    finished = threading.Event()

    def endless() -> Iterator[bytes]:
        nonlocal produced
        try:
            while produced < 50_000_000:
                produced += 1024
                yield b"x" * 1024
        finally:  # the server stops the body when the client hangs up (or at its end)
            finished.set()

    server.script(Reply(200, body=endless()))
    with pytest.raises(ResponseTooLarge) as info:
        make_client(max_body_bytes=100_000).fetch_visitor("v")
    assert info.value.cap == 100_000 and info.value.kind == "too_large"
    assert "97.7 KiB" in info.value.message
    assert finished.wait(10)
    assert produced < 10_000_000  # the client hung up instead of reading it all


def test_content_length_over_the_cap_is_refused_before_reading(server, make_client):
    server.script(ok())
    with pytest.raises(ResponseTooLarge):
        make_client(max_body_bytes=100).fetch_visitor("v")


def test_body_exactly_at_the_cap_is_accepted(server, make_client):
    body = json.dumps(DOCUMENTED).encode()
    server.script(Reply(200, body=iter([body[:100], body[100:]])))
    assert make_client(max_body_bytes=len(body)).fetch_visitor("v").body_bytes == len(body)


# -- retries ---------------------------------------------------------------------------


def test_two_503_then_success(server, make_client, fake_time):
    server.script(envelope(503, "down"), Reply(502, body=b"<html>bad gateway</html>"), ok())
    notices: list[RetryNotice] = []
    fetched = make_client().fetch_visitor("v", on_retry=notices.append)
    assert fetched.attempts == 3
    assert len(server.requests) == 3
    assert [n.attempt for n in notices] == [1, 2]
    assert notices[0].reason == "PostMetric is unavailable (HTTP 503)"
    assert [n.wait for n in notices] == fake_time.sleeps
    # Full jitter: uniform in [0, 0.25 * 2 ** (attempt - 1)].
    assert 0 <= fake_time.sleeps[0] <= 0.25 and 0 <= fake_time.sleeps[1] <= 0.5


def test_backoff_grows_and_is_capped(closed_port, make_client, fake_time):
    with pytest.raises(DeadlineExceeded):
        make_client(f"http://127.0.0.1:{closed_port}", deadline=60.0).fetch_visitor("v")
    ceilings = [min(4.0, 0.25 * 2**i) for i in range(len(fake_time.sleeps))]
    assert all(0 <= wait <= ceiling for wait, ceiling in zip(fake_time.sleeps, ceilings))
    assert max(fake_time.sleeps) > 2.0  # the 4 s cap was reached at some point
    assert sum(fake_time.sleeps) <= 60.0


def test_always_503_gives_up_at_the_deadline(server, make_client, fake_time):
    server.script(*[envelope(503, "down")] * 50)
    with pytest.raises(DeadlineExceeded) as info:
        make_client(deadline=3.0).fetch_visitor("v")
    err = info.value
    assert isinstance(err.last_error, ServiceUnavailable)
    assert err.kind == "deadline" and err.status_code == 503 and err.upstream_status == 503
    assert err.attempts == len(server.requests) == len(fake_time.sleeps) + 1
    assert sum(fake_time.sleeps) <= 3.0
    assert "for 3 s " in err.message and "HTTP 503" in err.message


def test_always_503_real_time(server):
    server.script(*[Reply(503)] * 50)
    client = PostMetricClient(server.url, API_KEY, deadline=0.6, read_timeout=0.5)
    started = time.monotonic()
    with pytest.raises(DeadlineExceeded), client:
        client.fetch_visitor("v")
    assert time.monotonic() - started < 1.2
    assert len(server.requests) >= 2


def test_retry_after_is_honoured(server, make_client, fake_time):
    server.script(envelope(503, "maintenance", headers={"Retry-After": "2"}), ok())
    fetched = make_client().fetch_visitor("v")
    assert fetched.attempts == 2 and fake_time.sleeps == [2.0]


def test_retry_after_beyond_the_deadline_stops_at_once(server, make_client, fake_time):
    server.script(envelope(503, "maintenance", headers={"Retry-After": "120"}), ok())
    with pytest.raises(ServiceUnavailable) as info:
        make_client().fetch_visitor("v")
    assert info.value.retry_after == 120.0
    assert "Try again in 2 min 0 s." in str(info.value)
    assert len(server.requests) == 1 and fake_time.sleeps == []


@pytest.mark.parametrize("status", [400, 401, 403, 404, 409, 422, 429, 500])
def test_4xx_and_500_are_not_retried(server, make_client, fake_time, status):
    server.script(Reply(status, body=b"<html>nope</html>"), ok())
    with pytest.raises(PostMetricError):
        make_client().fetch_visitor("v")
    assert len(server.requests) == 1 and fake_time.sleeps == []


# -- budget ----------------------------------------------------------------------------


def test_budget_is_spent_per_attempt_and_stops_calls(server, make_client):
    budget = RateBudget(2, 60.0)
    server.script(envelope(503, "down"), ok(), ok())
    client = make_client(budget=budget)
    assert client.fetch_visitor("v").attempts == 2
    with pytest.raises(BudgetExhausted) as info:
        client.fetch_visitor("v")
    assert len(server.requests) == 2
    assert "try again in" in str(info.value)


def test_budget_learns_from_upstream_headers(server, make_client):
    budget = RateBudget(100, 60.0)
    reset = int(time.time()) + 30
    server.script(ok(**{"X-RateLimit-Remaining": "0", "X-RateLimit-Reset": str(reset)}), ok())
    client = make_client(budget=budget)
    client.fetch_visitor("v")
    with pytest.raises(BudgetExhausted):
        client.fetch_visitor("v")
    assert len(server.requests) == 1


# -- test_connection -------------------------------------------------------------------


@pytest.mark.parametrize("reply", [envelope(404, "Visitor not found"), ok(CONNECTION_TEST_ID)])
def test_test_connection_succeeds(server, make_client, reply):
    server.script(reply)
    assert make_client().test_connection() is None
    assert server.requests[0].args["visitorId"] == CONNECTION_TEST_ID


def test_test_connection_raises_the_typed_error(server, make_client):
    server.script(envelope(401, "Unauthorized. Invalid or missing API key."))
    with pytest.raises(Unauthorized):
        make_client().test_connection()


# -- secrets and logs ------------------------------------------------------------------


def test_no_key_in_any_error_or_log(server, make_client, closed_port, caplog):
    caplog.set_level(logging.DEBUG)
    server.script(
        envelope(400, f"bad key {API_KEY}"),
        envelope(401, f"Unauthorized: {API_KEY}"),
        envelope(403, "Bearer " + API_KEY),
        envelope(500, "api_key=" + API_KEY[3:]),
        Reply(404, body=API_KEY.encode()),
        Reply(200, body=b"<html>" + API_KEY.encode()),
        Reply(200, body=json.dumps({"data": {"sessionCount": API_KEY}}).encode()),
        envelope(429, API_KEY),
    )
    errors: list[PostMetricError] = []
    client = make_client()
    for _ in range(8):
        with pytest.raises(PostMetricError) as info:
            client.fetch_visitor("v")
        errors.append(info.value)
    with pytest.raises(PostMetricError) as info:
        make_client(f"http://127.0.0.1:{closed_port}", deadline=1.0).fetch_visitor("v")
    errors.append(info.value)
    for err in errors:
        assert_no_secret(str(err), repr(err), err.title, str(err.upstream_message))
    assert_no_secret(caplog.text)
    assert all(r.getMessage() for r in caplog.records)


def test_one_info_log_line_per_attempt(server, make_client, caplog):
    caplog.set_level(logging.INFO, logger="dashboard.postmetric")
    server.script(Reply(503), ok())
    make_client().fetch_visitor("a\nvery-long-id-" + "x" * 200)
    lines = [r for r in caplog.records if r.name == "dashboard.postmetric"]
    assert len(lines) == 2 and all(r.levelno == logging.INFO for r in lines)
    first, second = (r.getMessage() for r in lines)
    assert "attempt=1" in first and "status=503" in first
    assert "attempt=2" in second and "status=200" in second and " ms" in second
    # No visitor data in logs: the audit trail, not the log, says who was looked up.
    assert all("very-long-id" not in line for line in (first, second))
    assert len(second) < 200


# -- classification of transport errors (isolated, no network) ------------------------


def _wrapped(reason: BaseException, outer: type[requests.RequestException] = requests.ConnectionError):
    pool_error = urllib3.exceptions.MaxRetryError(None, "/api/v1/visitor", reason=reason)
    return outer(pool_error)


@pytest.mark.parametrize(
    ("exc", "kind"),
    [
        (_wrapped(urllib3.exceptions.NameResolutionError("h", None, socket.gaierror(-2, "Name or service not known"))), "dns_failure"),
        (_wrapped(urllib3.exceptions.NewConnectionError(None, "[Errno 111] Connection refused")), "connection_failed"),
        (_wrapped(urllib3.exceptions.SSLError("certificate verify failed"), requests.exceptions.SSLError), "tls_failure"),
        (_wrapped(urllib3.exceptions.ConnectTimeoutError(None, "timed out"), requests.ConnectTimeout), "connect_timeout"),
        (requests.ConnectionError(urllib3.exceptions.ReadTimeoutError(None, "/", "Read timed out.")), "timeout"),
        # Recognised by class, not by name: a subclass and a connect time-out that
        # requests did not turn into ConnectTimeout.
        (requests.ConnectionError(type("ProxyReadTimeout", (urllib3.exceptions.ReadTimeoutError,), {})(None, "/", "slow")), "timeout"),
        (_wrapped(urllib3.exceptions.ConnectTimeoutError(None, "timed out")), "connect_timeout"),
        (_wrapped(type("ProxyNameError", (urllib3.exceptions.NameResolutionError,), {})("h", None, socket.gaierror(-2, "x"))), "dns_failure"),
        (requests.exceptions.ChunkedEncodingError("Connection broken: IncompleteRead"), "connection_failed"),
    ],
)
def test_transport_errors_are_classified(exc, kind):
    client = PostMetricClient("http://127.0.0.1:1", API_KEY)
    error = client._transport_error(exc, 3.05, 10.0)  # noqa: SLF001 - the mapping in isolation
    assert error.kind == kind
    assert_no_secret(str(error), repr(error))


def test_client_is_safe_to_share_between_threads(server):
    server.handler = lambda request: ok(request.args["visitorId"])
    errors: list[BaseException] = []
    with PostMetricClient(server.url, API_KEY) as client:

        def worker(n: int) -> None:
            try:
                assert client.fetch_visitor(f"id-{n}").visitor.visitor_id == f"id-{n}"
            except BaseException as exc:  # collected for the assertion below
                errors.append(exc)

        threads = [threading.Thread(target=worker, args=(n,)) for n in range(10)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
    assert errors == []
    assert len(server.requests) == 10
