"""What an operator reads: request IDs, one structured log line per request, and
failures logged once per kind per interval instead of once per request.

The request ID is taken from ``X-Request-ID`` when a trusted proxy sends a well-formed
one (``TRUSTED_PROXIES`` > 0), made otherwise; it goes back in the response header, on
error pages, in every log line written during the request and to PostMetric.
The request line names the route's rule (``/visitors/<visitor_id>``), never the path or
query string, so no visitor ID, token or filter text reaches the log.
"""
from __future__ import annotations

import json
import logging
import re
import threading
import time
import uuid
from collections.abc import Callable
from datetime import datetime, timezone

from flask import Flask, Response, g, has_request_context, request

from dashboard.config import Settings

REQUEST_ID_HEADER = "X-Request-ID"
# What a proxy's ID may look like: a UUID, a hex or base64-ish token; nothing that could
# break a log line or a header.
WELL_FORMED_ID = re.compile(r"[A-Za-z0-9._:+=/-]{8,128}")
TEXT_FORMAT = "%(asctime)s %(levelname)s %(name)s: %(message)s"
requests_log = logging.getLogger("dashboard.requests")


def make_request_id() -> str:
    return uuid.uuid4().hex


def request_id_from(header: str | None, *, trusted: bool) -> str:
    """The proxy's ID when it may be trusted and is well-formed, else a new one."""
    if trusted and header and WELL_FORMED_ID.fullmatch(header):
        return header
    return make_request_id()


def current_request_id() -> str | None:
    """This request's ID (None outside a request)."""
    if not has_request_context():
        return None
    if "request_id" not in g:  # an error raised before the first before_request hook
        g.request_id = make_request_id()
    return g.request_id


class RequestIdFilter(logging.Filter):
    """Puts the current request's ID on every record logged while it is handled."""

    def filter(self, record: logging.LogRecord) -> bool:
        if not hasattr(record, "request_id"):
            record.request_id = current_request_id()
        return True


class JsonFormatter(logging.Formatter):
    """One JSON object per line: time, level, logger, message, request ID and the
    record's ``fields`` (the request line's)."""

    def format(self, record: logging.LogRecord) -> str:
        entry: dict[str, object] = {
            "time": datetime.fromtimestamp(record.created, timezone.utc).isoformat(timespec="milliseconds"),
            "level": record.levelname,
            "logger": record.name,
            "message": record.getMessage(),
        }
        if getattr(record, "request_id", None):
            entry["request_id"] = record.request_id
        entry.update(getattr(record, "fields", {}))
        if record.exc_info:
            entry["error"] = self.formatException(record.exc_info)
        return json.dumps(entry, ensure_ascii=False, default=str)


class TextFormatter(logging.Formatter):
    """The plain format for people (``dashboard demo``), the request's fields appended."""

    def __init__(self) -> None:
        super().__init__(TEXT_FORMAT)

    def format(self, record: logging.LogRecord) -> str:
        text = super().format(record)
        fields = getattr(record, "fields", None)
        if fields:
            text += " " + " ".join(f"{key}={value}" for key, value in fields.items() if key != "message")
        return text


def configure_logging(log_format: str, *, level: int = logging.INFO) -> None:
    """Send the dashboard's and the root logger's records to standard error in ``log_format``."""
    root = logging.getLogger()
    handler = next((h for h in root.handlers if getattr(h, "dashboard_handler", False)), None)
    if handler is None:
        handler = logging.StreamHandler()
        handler.dashboard_handler = True  # type: ignore[attr-defined]
        handler.addFilter(RequestIdFilter())
        root.addHandler(handler)
    handler.setFormatter(JsonFormatter() if log_format == "json" else TextFormatter())
    root.setLevel(level)


def note_upstream(calls: int, cache: str) -> None:
    """Add this look-up's upstream calls and cache outcome to the request's log line."""
    g.upstream_calls = g.get("upstream_calls", 0) + calls
    g.cache_outcomes = [*g.get("cache_outcomes", []), cache]


def signed_in_agent_id() -> int | None:
    """The agent this request was made by, if Flask-Login already loaded them (the log
    line must not itself load the agent: with the database down that would fail too)."""
    user = g.get("_login_user")
    return user.id if user is not None and getattr(user, "is_authenticated", False) else None


def route_rule() -> str | None:
    """The matched route's rule (``/visitors/<visitor_id>``): never the path itself."""
    return request.url_rule.rule if request.url_rule is not None else None


def request_fields(response: Response, duration: float) -> dict[str, object]:
    rule = route_rule()
    outcomes = g.get("cache_outcomes", [])
    return {
        "agent_id": signed_in_agent_id(),
        "method": request.method,
        "route": rule,
        "status": response.status_code,
        "duration_ms": round(duration * 1000, 1),
        "upstream_calls": g.get("upstream_calls", 0),
        "cache": ",".join(outcomes) if outcomes else None,
    }


def init_app(app: Flask, settings: Settings, *, on_request: Callable[[Response, float], None] | None = None) -> None:
    """Give every request an ID and log one line for it when its response is ready.

    ``on_request(response, seconds)`` is told about each request too (the metrics)."""
    trusted = settings.trusted_proxies > 0

    @app.before_request
    def start_request() -> None:
        g.request_id = request_id_from(request.headers.get(REQUEST_ID_HEADER), trusted=trusted)
        g.request_started = time.perf_counter()

    @app.after_request
    def finish_request(response: Response) -> Response:
        # Registered first, so it runs last: the status is the one sent.
        response.headers[REQUEST_ID_HEADER] = current_request_id() or ""
        duration = time.perf_counter() - g.get("request_started", time.perf_counter())
        fields = request_fields(response, duration)
        requests_log.info("%s %s %s", request.method, fields["route"] or "(no route)", response.status_code, extra={"fields": fields})
        if on_request is not None:
            on_request(response, duration)
        return response

    @app.context_processor
    def request_id_in_templates() -> dict[str, object]:
        return {"request_id": current_request_id()}


class FailureLog:
    """Logs a failure once per kind per ``interval`` seconds, with how many more of the
    same kind came meanwhile: a dependency that is down for a minute gives a line or two,
    not one per request (nor a traceback each)."""

    def __init__(self, logger: logging.Logger, interval: float = 60.0, clock: Callable[[], float] = time.monotonic) -> None:
        self.logger = logger
        self.interval = interval
        self._clock = clock
        self._lock = threading.Lock()
        self._last: dict[str, float] = {}
        self._suppressed: dict[str, int] = {}

    def report(self, kind: str, message: str) -> bool:
        """Log ``message`` unless ``kind`` was logged within the interval; True if logged."""
        now = self._clock()
        with self._lock:
            last = self._last.get(kind)
            if last is not None and now - last < self.interval:
                self._suppressed[kind] = self._suppressed.get(kind, 0) + 1
                return False
            self._last[kind] = now
            suppressed = self._suppressed.pop(kind, 0)
        more = f" ({suppressed} more like it in the last {self.interval:g} s)" if suppressed else ""
        self.logger.error("%s: %s%s", kind, message, more)
        return True
