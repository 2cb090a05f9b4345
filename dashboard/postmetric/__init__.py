"""Client for PostMetric's visitor API: HTTP, typed models, typed errors, cache.

Plain Python: no Flask, no request state. Importing it starts nothing.
"""

from .budget import BudgetRegistry, RateBudget, key_fingerprint
from .cache import CacheOutcome, CacheStats, VisitorCache
from .client import CONNECTION_TEST_ID, FetchResult, PostMetricClient, RetryNotice
from .errors import (
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
from .models import PageView, Session, Visitor, parse_visitor_payload

__all__ = [
    "BadGateway",
    "BadRequest",
    "BudgetExhausted",
    "BudgetRegistry",
    "CONNECTION_TEST_ID",
    "CacheOutcome",
    "CacheStats",
    "ClientError",
    "ConnectionFailed",
    "DeadlineExceeded",
    "EndpointNotFound",
    "FetchResult",
    "Forbidden",
    "GatewayTimeout",
    "InvalidResponse",
    "PageView",
    "PostMetricClient",
    "PostMetricError",
    "RateBudget",
    "RateLimited",
    "ResponseTooLarge",
    "RetryNotice",
    "ServerError",
    "ServiceUnavailable",
    "Session",
    "Unauthorized",
    "UpstreamTimeout",
    "Visitor",
    "VisitorCache",
    "key_fingerprint",
    "parse_visitor_payload",
]
