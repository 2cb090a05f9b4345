"""Checking what a help desk signs, in constant time.

Intercom signs each request's raw body: ``X-Body-Signature`` is the hex HMAC-SHA256 of
the body with the app's client secret. A help desk that can only send a static header
(Freshdesk, Gorgias, …) sends the integration's secret itself.
"""
from __future__ import annotations

import hashlib
import hmac
from collections.abc import Iterable

INTERCOM_SIGNATURE_HEADER = "X-Body-Signature"
SECRET_HEADER = "X-Visitor-Lookup-Secret"


def body_signature(body: bytes, secret: str) -> str:
    """The hex HMAC-SHA256 of ``body`` with ``secret``, as Intercom writes it."""
    return hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()


def body_signed(body: bytes, signature: str | None, secrets: Iterable[str]) -> bool:
    """Whether ``signature`` is ``body``'s signature under one of ``secrets``."""
    given = (signature or "").strip().lower().encode()
    # Every secret is tried (no early exit), so the time taken does not say which matched.
    matched = False
    for secret in secrets:
        matched |= hmac.compare_digest(body_signature(body, secret).encode(), given)
    return bool(given) and matched


def secret_matches(given: str | None, secrets: Iterable[str]) -> bool:
    """Whether the header's value is one of ``secrets`` (compared as bytes, in constant time)."""
    value = (given or "").strip().encode()
    matched = False
    for secret in secrets:
        matched |= hmac.compare_digest(secret.encode(), value)
    return bool(value) and matched
