"""HTTP client for PostMetric's visitor endpoint.

``PostMetricClient.fetch_visitor`` returns a ``FetchResult`` (a typed ``Visitor`` plus
timing) or raises one of the typed errors in ``errors``. It knows nothing of Flask.

Retry policy (all under one total ``deadline`` measured from the first attempt):

- retried: connection refused or dropped, DNS failures, connect time-outs, and HTTP
  502/503/504; exponential backoff with full jitter (base 0.25 s, factor 2, cap 4 s),
  or exactly ``Retry-After`` when the answer has one;
- not retried: read time-outs (a slow upstream would only get slower), TLS failures,
  4xx (including 429), 500 and unreadable bodies;
- if ``Retry-After`` is longer than what is left of the deadline, that error is raised
  at once (its message says when to try again);
- when the deadline runs out after at least one retry, ``DeadlineExceeded`` is raised:
  it wraps the last error (``last_error``, also ``__cause__``) and its message says what
  kept failing. With a single attempt the error itself is raised.

The API key is only ever put in the Authorization header; it is in no URL, log line,
exception message or repr.
"""

from __future__ import annotations

import json
import logging
import random
import socket
import ssl
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timezone

import requests
from requests.adapters import HTTPAdapter
from requests.structures import CaseInsensitiveDict
from urllib3.exceptions import ConnectTimeoutError, NameResolutionError, NewConnectionError, ReadTimeoutError

from dashboard.config import default_of

from .budget import ANYONE, Budget, Spender, parse_reset, parse_retry_after
from dashboard.addresses import AddressPolicy, AddressRefused, check_base_url, guarded_adapter

from .errors import (
    AddressNotAllowed,
    BadGateway,
    BadRequest,
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
    clean_upstream_message,
)
from .models import Visitor, parse_visitor_payload

__all__ = ["PostMetricClient", "FetchResult", "RetryNotice", "CONNECTION_TEST_ID", "USER_AGENT"]

log = logging.getLogger("dashboard.postmetric")

USER_AGENT = "VisitorLookup/0.1"
VISITOR_PATH = "/api/v1/visitor"
CONNECTION_TEST_ID = "visitor-lookup-connection-test"

BACKOFF_BASE = 0.25
BACKOFF_FACTOR = 2.0
BACKOFF_CAP = 4.0
# Do not start an attempt with less time than this left of the deadline.
MIN_ATTEMPT_TIME = 0.05
CHUNK_SIZE = 64 * 1024
# Error bodies are only read for PostMetric's short error message.
ERROR_BODY_LIMIT = 64 * 1024
RETRIED_KINDS = frozenset({"connection_failed", "dns_failure", "connect_timeout", "bad_gateway", "unavailable", "gateway_timeout"})


@dataclass(frozen=True)
class RetryNotice:
    """Told to ``on_retry`` before each backoff sleep."""

    attempt: int
    """The attempt that just failed (1 for the first)."""
    wait: float
    """Seconds the client will sleep before the next attempt."""
    reason: str
    """Short description of the failure, e.g. "PostMetric is unavailable (HTTP 503)"."""


@dataclass(frozen=True)
class FetchResult:
    """A successful look-up."""

    visitor: Visitor
    fetched_at: datetime
    """When the answer arrived (aware, UTC)."""
    attempts: int
    elapsed: float
    """Seconds from the first attempt to the parsed answer."""
    body_bytes: int


class PostMetricClient:
    """Client for one PostMetric site (one base URL and key).

    One ``requests.Session`` is kept per client for connection reuse. Concurrent GETs
    through one session are fine in practice (urllib3's pool is thread-safe; the
    session's cookie jar is the only shared mutable state and PostMetric sets none).
    """

    def __init__(
        self,
        base_url: str,
        api_key: str,
        *,
        # The declared defaults of POSTMETRIC_CONNECT_TIMEOUT and its neighbours.
        connect_timeout: float = default_of("upstream_connect_timeout"),
        read_timeout: float = default_of("upstream_read_timeout"),
        deadline: float = default_of("upstream_deadline"),
        max_body_bytes: int = default_of("upstream_max_body_bytes"),
        budget: Budget | None = None,
        session: requests.Session | None = None,
        sleep: Callable[[float], None] = time.sleep,
        clock: Callable[[], float] = time.monotonic,
        rng: random.Random | None = None,
        address_policy: AddressPolicy | None = None,
        pool_size: int = default_of("server_threads"),
        observer: Callable[[str, float, int | None], None] | None = None,
    ) -> None:
        try:
            base_url = check_base_url(base_url)
        except AddressRefused as problem:
            raise ValueError(f"base_url cannot be used: {problem}") from None
        if not api_key or not api_key.strip():
            raise ValueError("api_key must not be empty")
        if min(connect_timeout, read_timeout, deadline) <= 0 or max_body_bytes <= 0:
            raise ValueError("timeouts, deadline and max_body_bytes must be positive")
        self.base_url = base_url.rstrip("/")
        self.url = self.base_url + VISITOR_PATH
        self._api_key = api_key.strip()
        self.connect_timeout = float(connect_timeout)
        self.read_timeout = float(read_timeout)
        self.deadline = float(deadline)
        self.max_body_bytes = int(max_body_bytes)
        self.budget = budget
        self._owns_session = session is None
        self._session = session if session is not None else requests.Session()
        # As many pooled connections as server threads, so that no look-up waits for
        # (or throws away) a connection while others are in use.
        if address_policy is not None:
            # Every connection (first or pooled anew) is checked where it really goes.
            self._session.mount("http://", guarded_adapter(address_policy, pool_size=pool_size))
            self._session.mount("https://", guarded_adapter(address_policy, pool_size=pool_size))
        elif self._owns_session:
            self._session.mount("http://", HTTPAdapter(pool_maxsize=pool_size))
            self._session.mount("https://", HTTPAdapter(pool_maxsize=pool_size))
        self._observer = observer
        self._sleep = sleep
        self._clock = clock
        self._rng = rng if rng is not None else random.Random()

    def __repr__(self) -> str:
        return f"PostMetricClient(base_url={self.base_url!r})"

    def close(self) -> None:
        """Close the connection pool (only if this client created the session)."""
        if self._owns_session:
            self._session.close()

    def __enter__(self) -> PostMetricClient:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    # -- public API ----------------------------------------------------------------

    def fetch_visitor(
        self,
        visitor_id: str,
        *,
        on_retry: Callable[[RetryNotice], None] | None = None,
        spender: Spender = ANYONE,
        request_id: str | None = None,
    ) -> FetchResult:
        """Look up one visitor. An unknown visitor is an empty ``Visitor``, not an error.

        Each attempt takes one request of the budget on ``spender``'s account.
        ``request_id`` (the dashboard request that asked) is sent as ``X-Request-ID``, so
        PostMetric's side of a failure can be found from the dashboard's log line.

        ``visitor_id`` is trimmed of surrounding white space and otherwise sent exactly.
        Raises ``ValueError`` if nothing is left, or a ``PostMetricError``.
        """
        if not isinstance(visitor_id, str):
            raise TypeError("visitor_id must be a str")
        vid = visitor_id.strip()
        if not vid:
            raise ValueError("visitor_id is empty")

        start = self._clock()
        attempt = 0
        while True:
            attempt += 1
            remaining = self.deadline - (self._clock() - start)
            try:
                visitor, body_bytes = self._attempt(vid, attempt, remaining, spender, request_id)
            except PostMetricError as err:
                if err.kind not in RETRIED_KINDS or isinstance(err, RateLimited):
                    raise
                remaining = self.deadline - (self._clock() - start)
                if err.retry_after is not None:
                    if err.retry_after > remaining:
                        raise
                    wait = err.retry_after
                else:
                    ceiling = min(BACKOFF_CAP, BACKOFF_BASE * BACKOFF_FACTOR ** (attempt - 1))
                    wait = self._rng.uniform(0.0, ceiling)
                if remaining - wait < MIN_ATTEMPT_TIME:
                    if attempt == 1:
                        raise
                    raise DeadlineExceeded(err, deadline=self.deadline, attempts=attempt) from err
                if on_retry is not None:
                    on_retry(RetryNotice(attempt=attempt, wait=wait, reason=_reason(err)))
                self._sleep(wait)
                continue
            return FetchResult(
                visitor=visitor,
                fetched_at=datetime.now(timezone.utc),
                attempts=attempt,
                elapsed=self._clock() - start,
                body_bytes=body_bytes,
            )

    def test_connection(self) -> None:
        """Check base URL and key with a look-up of a reserved ID; raise the typed error.

        Success is any readable answer: a visitor (normally empty) or a 404 envelope.
        """
        self.fetch_visitor(CONNECTION_TEST_ID)

    # -- one attempt ---------------------------------------------------------------

    def _attempt(
        self, vid: str, attempt: int, remaining: float, spender: Spender, request_id: str | None = None
    ) -> tuple[Visitor, int]:
        if self.budget is not None:
            self.budget.acquire(spender)
        connect_timeout = max(MIN_ATTEMPT_TIME, min(self.connect_timeout, remaining))
        read_timeout = max(MIN_ATTEMPT_TIME, min(self.read_timeout, remaining))
        started = self._clock()
        status: int | str = "-"
        outcome, status_code = "ok", None
        headers = {"Authorization": f"Bearer {self._api_key}", "Accept": "application/json", "User-Agent": USER_AGENT}
        if request_id:
            headers["X-Request-ID"] = request_id
        try:
            try:
                response = self._session.get(
                    self.url,
                    params={"visitorId": vid},
                    headers=headers,
                    timeout=(connect_timeout, read_timeout),
                    stream=True,
                    allow_redirects=False,
                )
            except requests.RequestException as exc:
                error = self._transport_error(exc, connect_timeout, read_timeout)
                status = error.kind
                raise error from None
            except AddressRefused as refused:
                status = AddressNotAllowed.kind
                raise AddressNotAllowed(str(refused)) from None
            try:
                status = status_code = response.status_code
                if self.budget is not None:
                    self.budget.observe(response.headers, response.status_code)
                ok = 200 <= response.status_code < 300
                limit = self.max_body_bytes if ok else ERROR_BODY_LIMIT
                body = self._read_body(response, limit, truncate=not ok, read_timeout=read_timeout, started=started)
            except PostMetricError as error:
                status = f"{status} {error.kind}"
                raise
            finally:
                response.close()
            if ok:
                try:
                    return parse_visitor_payload(body, vid), len(body)
                except PostMetricError as error:
                    error.upstream_status = response.status_code
                    status = f"{status} {error.kind}"
                    raise
            if response.status_code == 404 and _is_error_envelope(body):
                return Visitor.empty(vid), len(body)
            error = self._status_error(response.status_code, response.headers, body)
            raise error
        except PostMetricError as error:
            outcome = error.kind
            raise
        finally:
            elapsed = self._clock() - started
            # No visitor ID: the log is read by more people than the audit trail.
            log.info("PostMetric visitor look-up attempt=%d status=%s %.0f ms", attempt, status, elapsed * 1000)
            if self._observer is not None:
                self._observer(outcome, elapsed, status_code)

    def _read_body(
        self, response: requests.Response, limit: int, *, truncate: bool, read_timeout: float, started: float
    ) -> bytes:
        deadline = started + read_timeout
        length = response.headers.get("Content-Length")
        if not truncate and length is not None:
            try:
                declared = int(length)
            except ValueError:
                declared = -1
            if declared > limit:
                raise ResponseTooLarge(self.max_body_bytes, upstream_status=response.status_code)
        chunks: list[bytes] = []
        size = 0
        try:
            for chunk in response.iter_content(CHUNK_SIZE):
                size += len(chunk)
                if size > limit:
                    if truncate:
                        chunks.append(chunk[: limit - (size - len(chunk))])
                        break
                    raise ResponseTooLarge(self.max_body_bytes, upstream_status=response.status_code)
                chunks.append(chunk)
                # requests' read time-out is per socket read; a body that trickles in
                # must not hold the agent longer than one read time-out in total.
                if self._clock() > deadline:
                    raise UpstreamTimeout(read_timeout, "read", upstream_status=response.status_code)
        except requests.exceptions.ContentDecodingError:
            raise InvalidResponse(
                "its compressed body could not be decoded", upstream_status=response.status_code
            ) from None
        except requests.RequestException as exc:
            raise self._transport_error(exc, self.connect_timeout, read_timeout, during_body=True) from None
        return b"".join(chunks)

    # -- error mapping ---------------------------------------------------------------

    def _transport_error(
        self,
        exc: requests.RequestException,
        connect_timeout: float,
        read_timeout: float,
        *,
        during_body: bool = False,
    ) -> PostMetricError:
        causes = _causes(exc)
        # urllib3 makes every failed connection (refused, DNS) a subclass of
        # ConnectTimeoutError for old callers; like requests, only the others time out.
        if isinstance(exc, requests.ConnectTimeout) or any(
            isinstance(c, ConnectTimeoutError) and not isinstance(c, NewConnectionError) for c in causes
        ):
            return UpstreamTimeout(connect_timeout, "connect")
        if isinstance(exc, requests.ReadTimeout) or any(isinstance(c, (ReadTimeoutError, TimeoutError)) for c in causes):
            return UpstreamTimeout(read_timeout, "read")
        if isinstance(exc, requests.exceptions.SSLError) or any(isinstance(c, ssl.SSLError) for c in causes):
            return ConnectionFailed(kind="tls_failure")
        if any(isinstance(c, (NameResolutionError, socket.gaierror)) for c in causes):
            return ConnectionFailed(kind="dns_failure")
        if any(isinstance(c, ConnectionRefusedError) for c in causes):
            return ConnectionFailed(
                "PostMetric refused the connection: nothing is listening at the configured "
                "address. It may be down; try again in a moment, and if it persists an admin "
                "should check the base URL."
            )
        if during_body:
            return ConnectionFailed(
                "The connection to PostMetric broke while it was sending its answer. "
                "Try again in a moment."
            )
        if isinstance(exc, (requests.ConnectionError, requests.exceptions.ChunkedEncodingError)):
            return ConnectionFailed(
                "The connection to PostMetric failed or was closed before it answered. "
                "It may be down or restarting; try again in a moment."
            )
        return ConnectionFailed(
            "The request to PostMetric could not be sent. Try again in a moment; if it "
            "persists, an admin should check the base URL."
        )

    def _status_error(self, status: int, headers: CaseInsensitiveDict, body: bytes) -> PostMetricError:
        upstream_message = clean_upstream_message(_envelope_message(body), secrets=(self._api_key,))
        wall_now = time.time()
        retry_after = parse_retry_after(headers.get("Retry-After"), wall_now=wall_now)
        common = {"upstream_status": status, "upstream_message": upstream_message}
        if 300 <= status < 400:
            return EndpointNotFound(
                f"The configured base URL redirects elsewhere (HTTP {status}) instead of serving "
                "the PostMetric API. An admin must check the site's base URL (for example "
                "http:// versus https://).",
                **common,
            )
        if status == 400:
            return BadRequest(**common)
        if status == 401:
            return Unauthorized(**common)
        if status == 403:
            return Forbidden(**common)
        if status == 404:
            return EndpointNotFound(**common)
        if status == 429:
            if retry_after is None:
                retry_after = parse_reset(headers.get("X-RateLimit-Reset"), wall_now=wall_now)
            return RateLimited(retry_after=retry_after, **common)
        if status == 502:
            return BadGateway(retry_after=retry_after, **common)
        if status == 503:
            return ServiceUnavailable(retry_after=retry_after, **common)
        if status == 504:
            return GatewayTimeout(retry_after=retry_after, **common)
        if 500 <= status < 600:
            return ServerError(**common)
        return ClientError(**common)


def _reason(err: PostMetricError) -> str:
    if err.upstream_status is not None:
        return f"{err.title} (HTTP {err.upstream_status})"
    return err.title


def _causes(exc: BaseException) -> list[BaseException]:
    """The exception and everything it wraps (requests -> urllib3 -> socket)."""
    seen: list[BaseException] = []
    stack: list[object] = [exc]
    while stack and len(seen) < 32:
        item = stack.pop()
        if not isinstance(item, BaseException) or any(item is s for s in seen):
            continue
        seen.append(item)
        stack.extend([item.__cause__, item.__context__, getattr(item, "reason", None), *item.args])
    return seen


def _parse_json(body: bytes) -> object:
    try:
        return json.loads(body)
    except (ValueError, UnicodeDecodeError):
        return None


def _is_error_envelope(body: bytes) -> bool:
    """PostMetric's error envelope: ``{"status": "error", "error": {...}}``."""
    obj = _parse_json(body)
    return isinstance(obj, dict) and (obj.get("status") == "error" or isinstance(obj.get("error"), dict))


def _envelope_message(body: bytes) -> object:
    """The message of PostMetric's documented error envelope only; nothing from any other body."""
    obj = _parse_json(body)
    if isinstance(obj, dict) and obj.get("status") == "error":
        error = obj.get("error")
        if isinstance(error, dict):
            return error.get("message")
    return None
