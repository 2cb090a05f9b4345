"""The typed errors: stable kinds, agent-facing messages, no secrets."""
from __future__ import annotations

import pickle

import pytest

from dashboard.postmetric import errors as e

KEY = "pm_" + "f" * 64

ALL_ERRORS = [
    (e.BadRequest(upstream_status=400, upstream_message="visitorId parameter is required"), "bad_request", 502),
    (e.Unauthorized(upstream_status=401), "unauthorized", 502),
    (e.Forbidden(upstream_status=403), "forbidden", 502),
    (e.EndpointNotFound(upstream_status=404), "not_found_endpoint", 502),
    (e.RateLimited(upstream_status=429, retry_after=30), "rate_limited", 429),
    (e.BudgetExhausted(retry_after=5), "rate_limited", 429),
    (e.ServerError(upstream_status=500), "server_error", 502),
    (e.BadGateway(upstream_status=502), "bad_gateway", 502),
    (e.ServiceUnavailable(upstream_status=503), "unavailable", 503),
    (e.GatewayTimeout(upstream_status=504), "gateway_timeout", 504),
    (e.ClientError(upstream_status=418), "client_error", 502),
    (e.UpstreamTimeout(10.0, "read"), "timeout", 504),
    (e.UpstreamTimeout(3.05, "connect"), "connect_timeout", 504),
    (e.ConnectionFailed(), "connection_failed", 502),
    (e.ConnectionFailed(kind="dns_failure"), "dns_failure", 502),
    (e.ConnectionFailed(kind="tls_failure"), "tls_failure", 502),
    (e.InvalidResponse("it is not JSON"), "invalid_response", 502),
    (e.ResponseTooLarge(20 * 1024 * 1024), "too_large", 502),
    (e.DeadlineExceeded(e.ServiceUnavailable(upstream_status=503), deadline=10, attempts=4), "deadline", 503),
]


@pytest.mark.parametrize(("err", "kind", "status_code"), ALL_ERRORS, ids=[type(x[0]).__name__ + "-" + x[1] for x in ALL_ERRORS])
def test_every_error_is_complete(err, kind, status_code):
    assert isinstance(err, e.PostMetricError)
    assert err.kind == kind and err.status_code == status_code
    assert str(err) == err.message and err.message.endswith(".") and err.title
    assert type(err).__name__ in repr(err)
    copy = pickle.loads(pickle.dumps(err))
    assert (type(copy), copy.kind, copy.message) == (type(err), err.kind, err.message)


def test_documented_messages():
    assert str(e.Unauthorized()) == (
        "PostMetric refused this site's API key. An admin must replace the key in the site "
        "settings; retrying will not help."
    )
    assert str(e.UpstreamTimeout(10.0, "read")) == (
        "PostMetric did not answer within 10 s. It may be busy; try again in a moment."
    )
    assert str(e.BudgetExhausted(retry_after=41.2)) == "PostMetric's request limit is reached; try again in 42 s."
    assert e.BadRequest(upstream_message="visitorId parameter is required").message == (
        'PostMetric rejected the look-up as malformed (HTTP 400). PostMetric said: '
        '"visitorId parameter is required". This is probably a bug in Visitor Lookup; report it to an admin.'
    )


def test_deadline_wraps_the_last_error():
    last = e.BadGateway(upstream_status=502)
    err = e.DeadlineExceeded(last, deadline=10.0, attempts=3)
    assert err.last_error is last and err.__cause__ is last
    assert err.message == f"PostMetric kept failing for 10 s (3 attempts). Last problem: {last.message}"
    assert err.upstream_status == 502 and err.retryable


def test_retryable_flags():
    assert not e.Unauthorized().retryable and not e.ResponseTooLarge(1).retryable
    assert not e.ConnectionFailed(kind="tls_failure").retryable
    assert e.ConnectionFailed(kind="dns_failure").retryable and e.ServiceUnavailable().retryable


@pytest.mark.parametrize(
    "message",
    [
        f"invalid key {KEY}",
        f"Authorization: Bearer {KEY}",
        f"bearer {KEY[3:]}",
        f"api_key={KEY[3:]}",
        f"token: {KEY[3:]}",
    ],
)
def test_upstream_messages_are_scrubbed(message):
    cleaned = e.clean_upstream_message(message, secrets=(KEY,))
    assert KEY not in cleaned and KEY[3:] not in cleaned and "[redacted]" in cleaned


def test_unknown_secrets_in_other_shapes_are_scrubbed_when_given():
    assert e.clean_upstream_message("key=abc-secret-123 oops", secrets=("abc-secret-123",)) == "key=[redacted] oops"


@pytest.mark.parametrize(
    ("message", "expected"),
    [
        (None, None),
        (42, None),
        ("   ", None),
        ("line\nbreak\x00 and \u202eRTL", "line break and RTL"),
        # The same rule as the page (formatting.HIDDEN_CHARACTERS): the Arabic letter
        # mark is a bidi control, a tab is a space.
        ("left\u061cright\ttab", "left right tab"),
        ("x" * 500, "x" * 199 + "…"),
    ],
)
def test_upstream_messages_are_cleaned(message, expected):
    assert e.clean_upstream_message(message) == expected


@pytest.mark.parametrize(("retry_after", "when"), [(0.2, "in 0.2 s"), (41.2, "in 42 s"), (119.5, "in 2 min 0 s"), (7530, "in 2 h 6 min"), (None, "in a moment")])
def test_retry_waits_are_rounded_up(retry_after, when):
    assert str(e.ServiceUnavailable(retry_after=retry_after)).endswith(f"Try again {when}.")


def test_the_body_cap_is_written_in_binary_units():
    assert "larger than the 20 MiB limit" in str(e.ResponseTooLarge(20 * 1024 * 1024))
    assert "larger than the 64 KiB limit" in str(e.ResponseTooLarge(64 * 1024))


def test_invalid_arguments():
    with pytest.raises(ValueError):
        e.UpstreamTimeout(1.0, "write")
    with pytest.raises(ValueError):
        e.ConnectionFailed(kind="bogus")
