"""Typed errors for the PostMetric visitor API client.

Every failure the client can meet is one of these classes. Each carries what the
dashboard needs to render an error state without knowing HTTP details:

- ``kind``: a stable slug for templates, metrics and tests;
- ``title``: a short heading for the page;
- ``message``: one or two sentences for a support agent: what happened, what to do
  (``str(err) == err.message``);
- ``retryable``: whether the agent's retry button makes sense;
- ``retry_after``: seconds to wait before retrying, when known;
- ``upstream_status``: the HTTP status PostMetric (or a proxy) answered, if any;
- ``status_code``: what the dashboard should answer for a full page.

Messages and reprs never contain the API key, the Authorization header or an upstream
body. At most PostMetric's own error message from its envelope is quoted, scrubbed of
anything that looks like a key and cut to 200 characters (see ``clean_upstream_message``).
"""

from __future__ import annotations

import base64
import re
from urllib.parse import quote, quote_plus

import humanize

from dashboard.formatting import HIDDEN_CHARACTERS, format_duration

__all__ = [
    "PostMetricError",
    "BadRequest",
    "Unauthorized",
    "Forbidden",
    "EndpointNotFound",
    "RateLimited",
    "BudgetExhausted",
    "AgentShareExceeded",
    "ReservedForInteractive",
    "ServerError",
    "BadGateway",
    "ServiceUnavailable",
    "GatewayTimeout",
    "ClientError",
    "UpstreamTimeout",
    "ConnectionFailed",
    "AddressNotAllowed",
    "InvalidResponse",
    "ResponseTooLarge",
    "DeadlineExceeded",
    "clean_upstream_message",
    "redact_secrets",
]

UPSTREAM_MESSAGE_LIMIT = 200

# Anything that looks like a PostMetric key, a bearer credential or an
# "api_key=..." pair is replaced before an upstream message is shown.
_SECRET_PATTERNS = (
    re.compile(r"pm_[A-Za-z0-9_\-]{6,}"),
    re.compile(r"(?i)bearer\s+\S+"),
    re.compile(r"(?i)(api[_-]?key|token|secret|authorization|password|passwd|pwd)(\s*[:=]\s*)\S+"),
)


def key_forms(secret: str) -> set[str]:
    """Every way a server could hand ``secret`` back that we can predict: as sent (with or
    without its "pm_" prefix), reversed, URL-encoded, and base64 (alone, in a Bearer header, at each of the three alignments
    it can have inside a longer base64 text)."""
    forms = {secret, secret[::-1], quote(secret, safe=""), quote_plus(secret), f"Bearer {secret}"}
    prefix, _, body = secret.partition("_")  # "pm_<hex>": the hex alone is the key too
    if body and len(prefix) <= 4:
        forms |= {body, body[::-1]}
    for plain_text in (secret, f"Bearer {secret}", f":{secret}"):
        for pad in range(3):
            for encode in (base64.b64encode, base64.urlsafe_b64encode):
                encoded = encode(b"\0" * pad + plain_text.encode()).decode().rstrip("=")
                # Drop the characters that the padding or the text's end could change.
                core = encoded[(pad * 4 + 2) // 3 :][:-2]
                if len(core) >= 8:
                    forms.add(core)
    return {form for form in forms if form}


FRAGMENT = 8  # a run of this many characters of a key, in any of its forms, is the key showing


def _compact(text: str) -> str:
    return re.sub(r"[^0-9a-z]", "", text.lower())


def _fragments(secret: str) -> set[str]:
    runs = set()
    for form in key_forms(secret):
        compact = _compact(form)
        runs.update(compact[i : i + FRAGMENT] for i in range(len(compact) - FRAGMENT + 1))
    return runs


def redact_secrets(text: str, secrets: tuple[str, ...]) -> str | None:
    """``text`` with every form of each secret replaced by "[redacted]"; None when a piece
    of one is still there (split across the text, say), so that nothing of it is shown."""
    for secret in secrets:
        if not secret:
            continue
        for form in sorted(key_forms(secret), key=len, reverse=True):
            text = re.sub(re.escape(form), "[redacted]", text, flags=re.IGNORECASE)
        runs = _fragments(secret)
        compact = _compact(text)
        if any(compact[i : i + FRAGMENT] in runs for i in range(len(compact) - FRAGMENT + 1)):
            return None
    return text


def clean_upstream_message(message: object, *, secrets: tuple[str, ...] = ()) -> str | None:
    """Make PostMetric's own error message safe to show: no secrets (in any form we can
    know, see ``redact_secrets``), no control or bidi characters, at most 200 characters.
    Returns None for anything unusable."""
    if not isinstance(message, str):
        return None
    # Only what could be shown is looked at (a few times the limit: redaction shortens it).
    text = redact_secrets(message[: UPSTREAM_MESSAGE_LIMIT * 4], secrets)
    if text is None:
        return None
    for pattern in _SECRET_PATTERNS:
        if pattern.groups >= 2:
            text = pattern.sub(lambda m: f"{m.group(1)}{m.group(2)}[redacted]", text)
        else:
            text = pattern.sub("[redacted]", text)
    text = HIDDEN_CHARACTERS.sub(" ", text)
    text = " ".join(text.split())
    if not text:
        return None
    if len(text) > UPSTREAM_MESSAGE_LIMIT:
        text = text[: UPSTREAM_MESSAGE_LIMIT - 1].rstrip() + "…"
    return text


def _said(upstream_message: str | None) -> str:
    if not upstream_message:
        return ""
    return f' PostMetric said: "{upstream_message.rstrip(" .")}".'


class PostMetricError(Exception):
    """Base class of every error the PostMetric client raises."""

    kind: str = "error"
    title: str = "PostMetric request failed"
    status_code: int = 502
    retryable: bool = False
    default_message: str = "The request to PostMetric failed."

    def __init__(
        self,
        message: str | None = None,
        *,
        title: str | None = None,
        kind: str | None = None,
        retryable: bool | None = None,
        retry_after: float | None = None,
        upstream_status: int | None = None,
        upstream_message: str | None = None,
        status_code: int | None = None,
    ) -> None:
        self.upstream_status = upstream_status
        self.upstream_message = upstream_message
        self.retry_after = None if retry_after is None else max(0.0, float(retry_after))
        if kind is not None:
            self.kind = kind
        if title is not None:
            self.title = title
        if retryable is not None:
            self.retryable = retryable
        if status_code is not None:
            self.status_code = status_code
        self.message = message if message is not None else self._default_message()
        super().__init__(self.message)

    def _default_message(self) -> str:
        return self.default_message

    def _when(self, unknown: str) -> str:
        """When to try again: ``in 30 s`` (rounded up), or ``unknown`` without a Retry-After."""
        return f"in {format_duration(self.retry_after, round_up=True)}" if self.retry_after else unknown

    def __str__(self) -> str:
        return self.message

    def __repr__(self) -> str:
        return (
            f"{type(self).__name__}(kind={self.kind!r}, upstream_status={self.upstream_status!r}, "
            f"retry_after={self.retry_after!r}, message={self.message!r})"
        )

    def __reduce__(self):  # keep pickling (e.g. across processes) working with kw-only args
        return (_rebuild, (type(self), self.__dict__.copy()))


def _rebuild(cls: type[PostMetricError], state: dict) -> PostMetricError:
    err = cls.__new__(cls)
    Exception.__init__(err, state.get("message", ""))
    err.__dict__.update(state)
    return err


class BadRequest(PostMetricError):
    """400: PostMetric says the request is malformed (a bug on our side)."""

    kind = "bad_request"
    title = "PostMetric rejected the request"

    def _default_message(self) -> str:
        return (
            "PostMetric rejected the look-up as malformed (HTTP 400)."
            + _said(self.upstream_message)
            + " This is probably a bug in Visitor Lookup; report it to an admin."
        )


class Unauthorized(PostMetricError):
    """401: the API key is missing, wrong or revoked."""

    kind = "unauthorized"
    title = "PostMetric rejected the API key"
    default_message = (
        "PostMetric refused this site's API key. An admin must replace the key in the "
        "site settings; retrying will not help."
    )


class Forbidden(PostMetricError):
    """403: the key is valid but may not read this data."""

    kind = "forbidden"
    title = "PostMetric denied access"

    def _default_message(self) -> str:
        return (
            "PostMetric accepted the API key but denied access to this data (HTTP 403)."
            + _said(self.upstream_message)
            + " An admin must check that the key belongs to this website."
        )


class EndpointNotFound(PostMetricError):
    """404 without PostMetric's envelope, or a redirect: wrong base URL."""

    kind = "not_found_endpoint"
    title = "PostMetric API not found"
    default_message = (
        "The configured base URL does not serve the PostMetric API (it answered "
        "\"not found\" without a PostMetric answer). An admin must check the site's base URL."
    )


class RateLimited(PostMetricError):
    """429: PostMetric's rate limit for this key is reached."""

    kind = "rate_limited"
    title = "PostMetric's request limit is reached"
    status_code = 429
    retryable = True

    def _default_message(self) -> str:
        when = self._when("in a minute")
        return (
            "PostMetric's request limit for this site's key is reached (it is shared by "
            f"every agent). Try again {when}."
        )


class BudgetExhausted(RateLimited):
    """Our own per-key budget is spent; PostMetric was not called."""

    title = "PostMetric's request limit is reached"

    def _default_message(self) -> str:
        when = self._when("in a minute")
        return f"PostMetric's request limit is reached; try again {when}."


class AgentShareExceeded(BudgetExhausted):
    """This agent has had their share of the key's window while colleagues ask too;
    PostMetric was not called (the team's budget is left for them)."""

    kind = "agent_limit"
    title = "Your share of the team's look-ups is used"

    def __init__(self, count: int, **kwargs: object) -> None:
        self.count = int(count)
        super().__init__(**kwargs)  # type: ignore[arg-type]

    def _default_message(self) -> str:
        when = self._when("in a minute")
        return f"You have made {self.count} look-ups this minute; the team's limit is shared, try again {when}."


class ReservedForInteractive(BudgetExhausted):
    """Background work (a live-view tick, an export) met the reserve kept for agents'
    own look-ups; PostMetric was not called."""

    kind = "reserved"
    title = "Agents' look-ups come first"

    def _default_message(self) -> str:
        when = self._when("in a minute")
        return (
            "PostMetric's last requests this minute are kept for agents' look-ups, so live updates and "
            f"exports wait; they continue {when}."
        )


class ServerError(PostMetricError):
    """500 and any 5xx without a more specific class."""

    kind = "server_error"
    title = "PostMetric had an internal error"
    retryable = True

    def _default_message(self) -> str:
        status = self.upstream_status or 500
        return (
            f"PostMetric failed with an internal error (HTTP {status})."
            + _said(self.upstream_message)
            + " Try again in a moment; if it keeps failing, PostMetric needs to look at it."
        )


class BadGateway(PostMetricError):
    """502 from PostMetric or a proxy in front of it."""

    kind = "bad_gateway"
    title = "PostMetric is unreachable behind its proxy"
    retryable = True
    default_message = (
        "A proxy in front of PostMetric could not reach it (HTTP 502). "
        "Try again in a moment."
    )


class ServiceUnavailable(PostMetricError):
    """503: PostMetric is down or overloaded."""

    kind = "unavailable"
    title = "PostMetric is unavailable"
    status_code = 503
    retryable = True

    def _default_message(self) -> str:
        when = self._when("in a moment")
        return (
            "PostMetric is temporarily unavailable (HTTP 503), for example during "
            f"maintenance. Try again {when}."
        )


class GatewayTimeout(PostMetricError):
    """504 from a proxy in front of PostMetric."""

    kind = "gateway_timeout"
    title = "PostMetric timed out behind its proxy"
    status_code = 504
    retryable = True
    default_message = (
        "A proxy in front of PostMetric gave up waiting for it (HTTP 504). "
        "PostMetric may be busy; try again in a moment."
    )


class ClientError(PostMetricError):
    """Any other 4xx (and unexpected statuses)."""

    kind = "client_error"
    title = "PostMetric refused the request"

    def _default_message(self) -> str:
        status = self.upstream_status if self.upstream_status is not None else "unexpected"
        return (
            f"PostMetric refused the look-up (HTTP {status})."
            + _said(self.upstream_message)
            + " Retrying will probably not help; report it to an admin if it persists."
        )


class UpstreamTimeout(PostMetricError):
    """No connection (phase "connect") or no answer (phase "read") in time."""

    status_code = 504
    retryable = True

    def __init__(self, seconds: float, phase: str = "read", **kwargs) -> None:
        if phase not in ("connect", "read"):
            raise ValueError(f"phase must be 'connect' or 'read', not {phase!r}")
        self.seconds = float(seconds)
        self.phase = phase
        kwargs.setdefault("kind", "connect_timeout" if phase == "connect" else "timeout")
        kwargs.setdefault(
            "title",
            "PostMetric did not accept the connection" if phase == "connect" else "PostMetric timed out",
        )
        super().__init__(**kwargs)

    def _default_message(self) -> str:
        secs = format_duration(self.seconds)
        if self.phase == "connect":
            return (
                f"PostMetric did not accept a connection within {secs}. It may be down or "
                "unreachable from this server; try again in a moment."
            )
        return f"PostMetric did not answer within {secs}. It may be busy; try again in a moment."


class ConnectionFailed(PostMetricError):
    """No usable connection: refused, DNS failure, TLS failure, dropped connection."""

    kind = "connection_failed"
    title = "Could not connect to PostMetric"
    retryable = True

    _MESSAGES = {
        "connection_failed": (
            "Could not connect to PostMetric: the connection was refused or broke. "
            "PostMetric may be down; try again in a moment."
        ),
        "dns_failure": (
            "The PostMetric host name in the site settings could not be resolved (DNS). "
            "An admin should check the base URL; if it is right, try again in a moment."
        ),
        "tls_failure": (
            "The secure (TLS) connection to PostMetric failed, for example because of an "
            "invalid certificate. An admin must check the base URL and PostMetric's certificate; "
            "retrying will not help."
        ),
    }
    _TITLES = {
        "connection_failed": "Could not connect to PostMetric",
        "dns_failure": "PostMetric's address could not be found",
        "tls_failure": "Secure connection to PostMetric failed",
    }

    def __init__(self, message: str | None = None, *, kind: str = "connection_failed", **kwargs) -> None:
        if kind not in self._MESSAGES:
            raise ValueError(f"unknown ConnectionFailed kind {kind!r}")
        kwargs.setdefault("title", self._TITLES[kind])
        kwargs.setdefault("retryable", kind != "tls_failure")
        super().__init__(message, kind=kind, **kwargs)

    def _default_message(self) -> str:
        return self._MESSAGES[self.kind]


class AddressNotAllowed(PostMetricError):
    """The base URL leads to an address the server may not send a key to; nothing was sent."""

    kind = "address_refused"
    title = "PostMetric's address is not allowed"
    status_code = 502

    def __init__(self, reason: str, **kwargs) -> None:
        self.reason = reason
        super().__init__(**kwargs)

    def _default_message(self) -> str:
        return (
            f"The site's base URL cannot be used: {self.reason}. Nothing was sent. An admin must "
            "correct the base URL; retrying will not help."
        )


class InvalidResponse(PostMetricError):
    """PostMetric (or something in its place) answered with an unusable body."""

    kind = "invalid_response"
    title = "PostMetric sent an unreadable answer"

    def __init__(self, reason: str, **kwargs) -> None:
        self.reason = reason
        super().__init__(**kwargs)

    def _default_message(self) -> str:
        return (
            f"PostMetric's answer could not be read: {self.reason}. "
            "Try again; if it keeps happening, report it to an admin."
        )

    def __repr__(self) -> str:
        return (
            f"InvalidResponse(reason={self.reason!r}, upstream_status={self.upstream_status!r}, "
            f"retryable={self.retryable!r})"
        )


class ResponseTooLarge(PostMetricError):
    """The body exceeded the configured cap; it was not loaded."""

    kind = "too_large"
    title = "PostMetric's answer is too large"

    def __init__(self, cap: int, **kwargs) -> None:
        self.cap = int(cap)
        super().__init__(**kwargs)

    def _default_message(self) -> str:
        return (
            f"PostMetric's answer for this visitor is larger than the {_size(self.cap)} limit, "
            "so it was not loaded. An admin can raise the limit; retrying will not help."
        )


def _size(n: int) -> str:
    """``64 KiB``, ``20 MiB``: the body cap is set in bytes, in powers of 1024."""
    return humanize.naturalsize(n, binary=True, format="%.3g")


class DeadlineExceeded(PostMetricError):
    """Retries used up the total deadline; wraps the last error (also ``__cause__``).

    ``kind`` is "deadline"; ``status_code``, ``upstream_status`` and ``retryable``
    follow the last error so the page answers e.g. 503 while PostMetric is down.
    """

    kind = "deadline"
    title = "PostMetric kept failing"

    def __init__(self, last_error: PostMetricError, *, deadline: float, attempts: int) -> None:
        self.last_error = last_error
        self.deadline = float(deadline)
        self.attempts = int(attempts)
        super().__init__(
            retryable=True,
            retry_after=last_error.retry_after,
            upstream_status=last_error.upstream_status,
            upstream_message=last_error.upstream_message,
            status_code=last_error.status_code,
        )
        self.__cause__ = last_error

    def _default_message(self) -> str:
        return (
            f"PostMetric kept failing for {format_duration(self.deadline)} ({self.attempts} attempts). "
            f"Last problem: {self.last_error.message}"
        )

    def __repr__(self) -> str:
        return (
            f"DeadlineExceeded(attempts={self.attempts!r}, deadline={self.deadline!r}, "
            f"last_error={self.last_error!r})"
        )
