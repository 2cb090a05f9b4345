"""The bundled PostMetric stand-in: ``GET /api/v1/visitor?visitorId=...``.

It follows ``postmetric-visitor-api.md``: bearer-key auth checked first (401), then the
per-key rate limit (429), then ``visitorId`` (400), then the data from
``dashboard.demo.data``. Known visitors answer ``{"status": "success", "data": {...}}``;
unknown ones answer 200 with zero counts, empty arrays and no ``firstVisit``/``lastVisit``.

Caps: like PostMetric's implementation, arrays are capped to ``caps`` (100 sessions,
1,000 page views by default) and ``sessionCount``/``pageViewCount`` are then the lengths
of the returned arrays. With ``caps=None`` the full arrays and counts are returned.
Exception, on purpose: ``visitor_huge`` always reports its true totals (2,000 sessions,
20,000 page views) while its arrays are capped, as "other deployments" may do, so that
the dashboard can show "showing N of M".

Rate limit: ``rate_limit`` requests (100) per key in a fixed 60-second window that opens
with the key's first request; every authenticated response from the "API" carries
``X-RateLimit-Limit``, ``X-RateLimit-Remaining`` and ``X-RateLimit-Reset`` (epoch seconds
of the window end). Over budget: 429 envelope with ``Retry-After``. Time comes from
``clock`` so tests can move it.

Failure modes on demand, by reserved visitor IDs (after auth and the rate limit):

- ``fail-400``, ``fail-401``, ``fail-403``: the error envelope with that status.
- ``fail-404``: 404 with the error envelope (means "no such visitor").
- ``fail-404-html``: 404 with an HTML page, as from a wrong base URL.
- ``fail-429``: 429 envelope with ``Retry-After: 30``; ``fail-429-bare``: 429 with neither
  ``Retry-After`` nor rate-limit headers.
- ``fail-500``: 500 envelope carrying the server's own message.
- ``fail-502``, ``fail-504``: HTML pages from a "proxy" (no rate-limit headers).
- ``fail-503``: 503 envelope with ``Retry-After: 2``.
- ``fail-empty``: 200 with an empty body; ``fail-truncated``: 200 with JSON cut half-way;
  ``fail-html``: 200 with an HTML sign-in page.
- ``fail-wrong-types``: visitor_123 with ``"sessionCount": "five"``.
- ``fail-sessions-object``: ``sessions`` is an object keyed by session ID.
- ``fail-null-entries``: ``sessions: [null]`` and ``pageViews: [null]`` (counts 1).
- ``fail-huge-body``: 200 with ~25 MB of valid JSON, streamed in ~200 KB chunks by a
  generator (chunked transfer, no Content-Length), never held in memory.
- ``fail-slow`` (and ``fail-slow-<anything>``, so many distinct slow look-ups can hang at
  once): waits ``slow_seconds`` (15 s) then answers like visitor_123; the wait ends early
  when the server stops.
- ``fail-flaky-N`` (e.g. ``fail-flaky-2``): the first N requests for that exact ID, per
  app instance, answer 503 (envelope, no Retry-After); later ones answer like visitor_123
  with ``visitorId`` set to the requested ID.
- ``fail-drop``: the server closes the connection without any response (needs werkzeug's
  server, which exposes the socket; elsewhere, e.g. the Flask test client, it answers an
  empty 502 instead).

Any other ``fail-...`` ID is simply an unknown visitor. ``fail-slow`` and ``fail-flaky-N``
get the caps like any visitor.

``app.extensions["fake_api"]`` is a ``FakeApiStats``: ``calls`` counts every API request
whatever its outcome, ``calls_by_visitor`` counts them by the ``visitorId`` received
(``""`` when absent), ``rate_limited`` counts the requests refused over the rate limit, and ``reset()`` also forgets rate windows and flaky counters.
"""
from __future__ import annotations

import hmac
import json
import math
import re
import socket
import threading
from collections import Counter
from collections.abc import Callable, Iterable, Iterator
from datetime import datetime, timezone
from typing import Any

from flask import Flask, Response, request
from werkzeug.serving import BaseWSGIServer, WSGIRequestHandler, make_server

from dashboard.demo.data import (
    DEMO_API_KEY,
    EXAMPLE_VISITOR_ID,
    HUGE_TOTALS,
    HUGE_VISITOR_ID,
    build_visitor_payload,
)

__all__ = ["FakeApiServer", "FakeApiStats", "create_fake_api", "serve", "utcnow"]

RATE_WINDOW_SECONDS = 60
MSG_MISSING_ID = "visitorId parameter is required"
MSG_UNAUTHORIZED = "Unauthorized. Invalid or missing API key."
MSG_RATE_LIMITED = "Too many requests. Rate limit exceeded."
_FLAKY = re.compile(r"fail-flaky-(\d+)")
_HUGE_BODY_BYTES = 25_000_000


def utcnow() -> datetime:
    """The current time, timezone-aware UTC."""
    return datetime.now(timezone.utc)


class FakeApiStats:
    """What the stand-in has seen, shared by its request threads."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self.calls = 0
        self.calls_by_visitor: Counter[str] = Counter()
        self.rate_limited = 0  # requests refused by the rate limit (429 over budget)
        # The X-Request-ID of each request (None when it came without one), in order.
        self.request_ids: list[str | None] = []
        self._flaky: Counter[str] = Counter()
        self._windows: dict[str, tuple[float, int]] = {}
        # Set when the server stops, so that sleeping handlers (latency, fail-slow) wake up.
        self.stopping = threading.Event()

    def record(self, visitor_id: str, request_id: str | None = None) -> None:
        """Count one API request."""
        with self._lock:
            self.calls += 1
            self.calls_by_visitor[visitor_id] += 1
            self.request_ids.append(request_id)

    def flaky_attempt(self, visitor_id: str) -> int:
        """Count a request for a ``fail-flaky-N`` ID and return its 1-based number."""
        with self._lock:
            self._flaky[visitor_id] += 1
            return self._flaky[visitor_id]

    def take(self, key: str, now: float, limit: int) -> tuple[bool, int, float]:
        """Spend one request of ``key``'s budget: (allowed, remaining, window end)."""
        with self._lock:
            start, used = self._windows.get(key, (now, 0))
            if now >= start + RATE_WINDOW_SECONDS:
                start, used = now, 0
            allowed = used < limit
            if allowed:
                used += 1
            else:
                self.rate_limited += 1
            self._windows[key] = (start, used)
            return allowed, max(limit - used, 0), start + RATE_WINDOW_SECONDS

    def reset(self) -> None:
        """Forget all counts, rate windows and flaky attempts."""
        with self._lock:
            self.calls = 0
            self.rate_limited = 0
            self.calls_by_visitor.clear()
            self.request_ids.clear()
            self._flaky.clear()
            self._windows.clear()


def _json(body: Any, status: int = 200, headers: dict[str, str] | None = None) -> Response:
    # json.dumps rather than jsonify: Flask's provider sorts keys; PostMetric keeps its order.
    text = json.dumps(body, ensure_ascii=False, separators=(",", ":"))
    return Response(text, status=status, headers=headers, content_type="application/json; charset=utf-8")


def _error(code: int, message: str, headers: dict[str, str] | None = None) -> Response:
    return _json({"status": "error", "error": {"code": code, "message": message}}, code, headers)


def _html(status: int, title: str, body: str) -> Response:
    page = f"<!DOCTYPE html>\n<html><head><title>{title}</title></head><body>{body}</body></html>\n"
    return Response(page, status=status, content_type="text/html; charset=utf-8")


def _nginx(status: int, reason: str) -> Response:
    return Response(
        f"<html>\r\n<head><title>{status} {reason}</title></head>\r\n<body>\r\n"
        f"<center><h1>{status} {reason}</h1></center>\r\n<hr><center>nginx</center>\r\n</body>\r\n</html>\r\n",
        status=status,
        content_type="text/html",
    )


def _bearer_key(header: str | None) -> str | None:
    if not header or not header.startswith("Bearer "):
        return None
    return header[len("Bearer ") :].strip() or None


def _huge_body(stopping: threading.Event) -> Iterator[bytes]:
    """About 25 MB of valid JSON, yielded in chunks so it is never held in memory."""

    def entry(i: int) -> str:
        # Fixed width (zero-padded numbers, constant time stamps) so the count is known up front.
        return (
            f'{{"path":"/catalogue/item-{i:07d}","title":"Catalogue item {i:07d} '
            f'{"x" * 80}","timestamp":"2024-01-15T10:30:00.000Z","referrer":"https://your-domain.com/catalogue"}}'
        )

    per_entry = len(entry(0)) + 1
    count = _HUGE_BODY_BYTES // per_entry
    head = {
        "visitorId": "fail-huge-body",
        "sessionCount": 1,
        "pageViewCount": count,
        "firstVisit": "2024-01-15T10:00:00.000Z",
        "lastVisit": "2024-01-15T10:30:00.000Z",
        "sessions": [
            {
                "sessionId": "sess_huge_body",
                "firstVisitAt": "2024-01-15T10:00:00.000Z",
                "lastSeenAt": "2024-01-15T10:30:00.000Z",
                "pageViews": count,
                "duration": 1800,
                "device": "desktop",
                "browser": "chrome",
                "os": "windows",
                "country": "US",
            }
        ],
    }
    yield ('{"status":"success","data":' + json.dumps(head, separators=(",", ":"))[:-1] + ',"pageViews":[').encode()
    chunk = 1000
    for first in range(0, count, chunk):
        if stopping.is_set():
            return  # server shutting down: stop writing
        items = ",".join(entry(i) for i in range(first, min(first + chunk, count)))
        yield (("," if first else "") + items).encode()
    yield b"]}}"


def create_fake_api(
    api_keys: Iterable[str] = (DEMO_API_KEY,),
    *,
    latency: float = 0.0,
    caps: tuple[int, int] | None = (100, 1000),
    clock: Callable[[], datetime] = utcnow,
    slow_seconds: float = 15.0,
    rate_limit: int = 100,
    visitors: Iterable[str] | None = None,
) -> Flask:
    """Build the stand-in app (see the module docstring for its behaviour).

    ``visitors``, when given, limits the demo visitors this instance knows (the others
    answer as unknown), so that two instances can stand for two websites.
    """
    keys = [k.encode() for k in api_keys]
    known = None if visitors is None else frozenset(visitors)
    stats = FakeApiStats()
    app = Flask(__name__)
    app.extensions["fake_api"] = stats

    def key_ok(key: str | None) -> bool:
        if key is None:
            return False
        given = key.encode()
        # Compare against every key (no early exit) so timing says nothing about which matched.
        return sum(hmac.compare_digest(given, k) for k in keys) > 0

    def visitor_payload(visitor_id: str, as_id: str | None = None) -> dict[str, Any]:
        """``data`` for ``visitor_id`` after caps, or the unknown-visitor shape."""
        data = build_visitor_payload(visitor_id, clock(), limit=caps) if known is None or visitor_id in known else None
        if data is None:
            return {"visitorId": as_id or visitor_id, "sessionCount": 0, "pageViewCount": 0, "sessions": [], "pageViews": []}
        if as_id is not None:
            data["visitorId"] = as_id
        if visitor_id == HUGE_VISITOR_ID:
            data["sessionCount"], data["pageViewCount"] = HUGE_TOTALS
        elif caps is not None:
            # PostMetric's implementation reports the lengths of the (capped) arrays.
            data["sessionCount"], data["pageViewCount"] = len(data["sessions"]), len(data["pageViews"])
        return data

    def success(data: dict[str, Any]) -> Response:
        return _json({"status": "success", "data": data})

    def failure(visitor_id: str) -> tuple[Response, bool] | None:
        """The response for a reserved ``fail-...`` ID and whether it gets rate-limit headers."""

        def example() -> dict[str, Any]:
            return visitor_payload(EXAMPLE_VISITOR_ID, as_id=visitor_id)

        match visitor_id:
            case "fail-400":
                return _error(400, "Invalid visitorId parameter"), True
            case "fail-401":
                return _error(401, MSG_UNAUTHORIZED), True
            case "fail-403":
                return _error(403, "Forbidden. This API key cannot access this website."), True
            case "fail-404":
                return _error(404, "Visitor not found"), True
            case "fail-404-html":
                return _html(404, "404: This page could not be found", "<h1>404</h1><p>This page could not be found.</p>"), False
            case "fail-429":
                return _error(429, MSG_RATE_LIMITED, {"Retry-After": "30"}), True
            case "fail-429-bare":
                return _error(429, MSG_RATE_LIMITED), False
            case "fail-500":
                return _error(500, "Internal server error: connection to the analytics database timed out"), True
            case "fail-502":
                return _nginx(502, "Bad Gateway"), False
            case "fail-503":
                return _error(503, "Service temporarily unavailable", {"Retry-After": "2"}), True
            case "fail-504":
                return _nginx(504, "Gateway Time-out"), False
            case "fail-empty":
                return Response(b"", 200, content_type="application/json"), True
            case "fail-truncated":
                text = _json({"status": "success", "data": example()}).get_data()
                return Response(text[: len(text) // 2], 200, content_type="application/json"), True
            case "fail-html":
                return _html(200, "Sign in", "<h1>Sign in</h1><form><input name=email></form>"), False
            case "fail-wrong-types":
                data = example()
                data["sessionCount"] = "five"
                return success(data), True
            case "fail-sessions-object":
                data = example()
                data["sessions"] = {s["sessionId"]: s for s in data["sessions"]}
                return success(data), True
            case "fail-null-entries":
                data = example()
                data.update(sessionCount=1, pageViewCount=1, sessions=[None], pageViews=[None])
                return success(data), True
            case "fail-huge-body":
                return Response(_huge_body(stats.stopping), 200, content_type="application/json"), True
            case slow if slow == "fail-slow" or slow.startswith("fail-slow-"):
                stats.stopping.wait(slow_seconds)
                return success(example()), True
            case "fail-drop":
                conn = request.environ.get("werkzeug.socket")
                if conn is None:
                    return Response(b"", 502), False
                # Both directions: the client reads EOF with no status line. Werkzeug's
                # later write fails with a ConnectionError, which it treats as a dropped
                # connection and does not log.
                conn.shutdown(socket.SHUT_RDWR)
                # Never sent; 444 (nginx's "closed without response") is what the request log shows.
                return Response(b"", 444), False
        flaky = _FLAKY.fullmatch(visitor_id)
        if flaky:
            if stats.flaky_attempt(visitor_id) <= int(flaky.group(1)):
                return _error(503, "Service temporarily unavailable"), True
            return success(example()), True
        return None

    @app.get("/healthz")
    def healthz() -> Response:
        return Response("ok", content_type="text/plain")

    @app.get("/api/v1/visitor")
    def visitor() -> Response:
        visitor_id = request.args.get("visitorId", "")
        stats.record(visitor_id, request.headers.get("X-Request-ID"))
        if latency > 0:
            stats.stopping.wait(latency)
        key = _bearer_key(request.headers.get("Authorization"))
        if not key_ok(key):
            return _error(401, MSG_UNAUTHORIZED)
        assert key is not None
        allowed, remaining, window_end = stats.take(key, clock().timestamp(), rate_limit)
        limit_headers = {
            "X-RateLimit-Limit": str(rate_limit),
            "X-RateLimit-Remaining": str(remaining),
            "X-RateLimit-Reset": str(math.ceil(window_end)),
        }
        if not allowed:
            retry = max(1, math.ceil(window_end - clock().timestamp()))
            return _error(429, MSG_RATE_LIMITED, {**limit_headers, "Retry-After": str(retry)})
        if not visitor_id:
            return _error(400, MSG_MISSING_ID, limit_headers)
        answer = failure(visitor_id) if visitor_id.startswith("fail-") else None
        if answer is None:
            answer = success(visitor_payload(visitor_id)), True
        response, with_limits = answer
        if with_limits:
            response.headers.update(limit_headers)
        return response

    return app


class _QuietHandler(WSGIRequestHandler):
    """No per-request log lines: tests and `dashboard demo` would drown in them."""

    def log_request(self, code: int | str = "-", size: int | str = "-") -> None:
        pass


class FakeApiServer:
    """Run a stand-in on a free local port in a daemon thread; a context manager.

    ``FakeApiServer(app=None, *, host="127.0.0.1", port=0, quiet=True, **create_kwargs)``:
    with no ``app``, one is built with ``create_fake_api(**create_kwargs)``. It can be
    started again after ``stop()`` (on a new port when ``port=0``).
    """

    def __init__(
        self,
        app: Flask | None = None,
        *,
        host: str = "127.0.0.1",
        port: int = 0,
        quiet: bool = True,
        **create_kwargs: Any,
    ) -> None:
        if app is not None and create_kwargs:
            raise TypeError("pass either app or create_fake_api arguments, not both")
        self.app = app if app is not None else create_fake_api(**create_kwargs)
        self.host = host
        self._requested_port = port
        self._quiet = quiet
        self._server: BaseWSGIServer | None = None
        self._thread: threading.Thread | None = None
        self.port: int = 0

    @property
    def stats(self) -> FakeApiStats:
        """The app's ``FakeApiStats``."""
        return self.app.extensions["fake_api"]

    @property
    def url(self) -> str:
        """Base URL, e.g. ``http://127.0.0.1:54321`` (no trailing slash)."""
        if self._server is None:
            raise RuntimeError("FakeApiServer is not running")
        return f"http://{self.host}:{self.port}"

    def start(self) -> FakeApiServer:
        """Bind and serve in a daemon thread; returns self."""
        if self._server is not None:
            raise RuntimeError("FakeApiServer is already running")
        self.stats.stopping.clear()
        server = make_server(
            self.host,
            self._requested_port,
            self.app,
            threaded=True,
            request_handler=_QuietHandler if self._quiet else None,
        )
        self._server = server
        self.port = server.server_port
        # A short poll interval makes shutdown() return in ~10 ms instead of up to 0.5 s,
        # which matters for per-test fixtures; the cost is an idle select() every 10 ms.
        self._thread = threading.Thread(
            target=server.serve_forever, kwargs={"poll_interval": 0.01}, name=f"fake-api:{self.port}", daemon=True
        )
        self._thread.start()
        return self

    def stop(self) -> None:
        """Stop serving, wake sleeping handlers, close the socket and join the thread."""
        server, thread = self._server, self._thread
        if server is None or thread is None:
            return
        self.stats.stopping.set()
        server.shutdown()
        thread.join()
        server.server_close()
        self._server = self._thread = None

    def __enter__(self) -> FakeApiServer:
        return self.start()

    def __exit__(self, *exc_info: object) -> None:
        self.stop()


def serve(port: int, host: str = "127.0.0.1", latency: float = 0.0) -> None:
    """Serve the stand-in until Ctrl-C (for ``dashboard fake-api``), threaded, with request logs."""
    app = create_fake_api(latency=latency)
    server = make_server(host, port, app, threaded=True)
    print(f"PostMetric stand-in on http://{host}:{server.server_port} (key: {DEMO_API_KEY})", flush=True)
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        pass
    finally:
        app.extensions["fake_api"].stopping.set()
        server.server_close()
