"""Settings read from the environment once, validated at start-up.

Everything the app needs from outside comes through :class:`Settings`; nothing else
reads ``os.environ``. A missing secret in production stops the start with a sentence
that says what to set.
"""
from __future__ import annotations

import os
import re
import secrets
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Mapping
from urllib.parse import urlsplit

PROJECT_ROOT = Path(__file__).resolve().parent.parent
DEFAULT_INSTANCE_PATH = PROJECT_ROOT / "instance"


class ConfigError(Exception):
    """The environment does not describe a usable configuration."""


def _number(env: Mapping[str, str], name: str, default: float, *, minimum: float = 0.0) -> float:
    raw = env.get(name, "").strip()
    if not raw:
        return default
    try:
        value = float(raw)
    except ValueError:
        raise ConfigError(f"{name} must be a number of seconds or a count, not {raw!r}.") from None
    if value < minimum:
        raise ConfigError(f"{name} must be at least {minimum:g}, not {raw!r}.")
    return value


def _flag(env: Mapping[str, str], name: str, default: bool) -> bool:
    raw = env.get(name, "").strip().lower()
    if not raw:
        return default
    if raw in {"1", "true", "yes", "on"}:
        return True
    if raw in {"0", "false", "no", "off"}:
        return False
    raise ConfigError(f"{name} must be true or false, not {raw!r}.")


def _rate_limit(env: Mapping[str, str], name: str, default: str) -> str:
    """A Flask-Limiter rate such as "5 per 15 minutes" (several separated by ";")."""
    raw = env.get(name, "").strip()
    if not raw:
        return default
    from limits import parse_many

    try:
        parse_many(raw)
    except ValueError:
        raise ConfigError(f"{name} must be a rate such as '5 per 15 minutes', not {raw!r}.") from None
    return raw


# One CSP source: a quoted keyword, a scheme ("https:") or a host with optional scheme,
# port and path. Nothing that could end the directive or the header.
_CSP_SOURCE = re.compile(
    r"'(?:self|none)'|[a-z][a-z0-9+.-]*:|(?:[a-z][a-z0-9+.-]*://)?(?:\*\.)?[A-Za-z0-9.-]+(?::(?:\d+|\*))?(?:/[A-Za-z0-9._~/%-]*)?"
)


def _frame_ancestors(env: Mapping[str, str]) -> str:
    raw = env.get("FRAME_ANCESTORS", "").strip()
    if not raw:
        return "'none'"
    sources = [source for source in raw.split(" ") if source]  # split on spaces only: a tab or newline is refused
    valid = all(_CSP_SOURCE.fullmatch(source) for source in sources)
    if not valid or ("'none'" in sources and len(sources) > 1):
        raise ConfigError(
            f"FRAME_ANCESTORS must be a Content-Security-Policy source list such as 'none', 'self' or "
            f"https://intranet.example.com, not {raw!r}."
        )
    return " ".join(sources)


def _encryption_key(env: Mapping[str, str]) -> str | None:
    raw = env.get("DASHBOARD_ENCRYPTION_KEY", "").strip()
    if not raw:
        return None
    from cryptography.fernet import Fernet

    try:
        Fernet(raw)
    except (ValueError, TypeError):
        raise ConfigError(
            "DASHBOARD_ENCRYPTION_KEY must be a Fernet key (32 bytes, URL-safe base64), for example the output of: "
            "python -c 'from cryptography.fernet import Fernet; print(Fernet.generate_key().decode())'."
        ) from None
    return raw


def validate_base_url(url: str, *, name: str = "POSTMETRIC_API_URL") -> str:
    """Return the URL without a trailing slash, or raise ConfigError for a non-http(s) URL."""
    parts = urlsplit(url.strip())
    if parts.scheme not in {"http", "https"} or not parts.netloc:
        raise ConfigError(f"{name} must be an http:// or https:// URL such as https://your-domain.com, not {url!r}.")
    from dashboard.addresses import AddressRefused, check_base_url

    try:
        return check_base_url(url)
    except AddressRefused as problem:
        raise ConfigError(f"{name} cannot be used: {problem}.") from None


def _host_list(env: Mapping[str, str], name: str) -> tuple[str, ...]:
    """Host names, addresses or networks separated by commas or spaces."""
    return tuple(entry for entry in re.split(r"[,\s]+", env.get(name, "").strip()) if entry)


@dataclass(frozen=True)
class Settings:
    """The whole configuration of one app instance."""

    secret_key: str
    database_url: str
    mode: str = "production"  # production | demo | test
    postmetric_api_url: str | None = None
    postmetric_api_key: str | None = field(default=None, repr=False)
    visitor_cache_ttl: float = 60.0
    visitor_cache_max_entries: int = 256
    visitor_cache_max_bytes: int = 64 * 1024 * 1024
    redis_url: str | None = None
    upstream_connect_timeout: float = 3.05
    upstream_read_timeout: float = 10.0
    upstream_deadline: float = 10.0
    upstream_max_body_bytes: int = 20 * 1024 * 1024
    upstream_budget_per_minute: int = 100
    timeline_page_size: int = 50
    live_refresh_seconds: float = 15.0
    session_cookie_secure: bool = False
    instance_path: Path = DEFAULT_INSTANCE_PATH
    # Encrypts the sites' API keys at rest; None: a key derived from secret_key.
    encryption_key: str | None = field(default=None, repr=False)
    audit_retention_days: int = 90
    frame_ancestors: str = "'none'"
    trusted_proxies: int = 0
    login_limit_per_account: str = "5 per 15 minutes"
    login_limit_per_address: str = "30 per 15 minutes"
    set_password_link_hours: float = 48.0
    # Where a site's key may be sent besides public addresses (see dashboard/addresses.py).
    postmetric_allowed_hosts: tuple[str, ...] = ()
    allow_private_upstreams: bool = False

    def __repr__(self) -> str:  # never print the secrets
        return f"Settings(mode={self.mode!r}, database_url={self.database_url!r}, postmetric_api_url={self.postmetric_api_url!r})"

    @property
    def testing(self) -> bool:
        return self.mode == "test"

    def with_changes(self, **changes: object) -> "Settings":
        return replace(self, **changes)

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None, *, mode: str | None = None) -> "Settings":
        """Read and validate the configuration; raise ConfigError with what to set."""
        env = os.environ if env is None else env
        mode = mode or env.get("DASHBOARD_MODE", "production").strip() or "production"
        if mode not in {"production", "demo", "test"}:
            raise ConfigError(f"DASHBOARD_MODE must be production, demo or test, not {mode!r}.")

        secret_key = env.get("SECRET_KEY", "").strip()
        if not secret_key:
            if mode == "production":
                raise ConfigError(
                    "SECRET_KEY is not set. Set SECRET_KEY to a long random string "
                    "(for example the output of: python -c 'import secrets; print(secrets.token_hex(32))') "
                    "and start again."
                )
            secret_key = secrets.token_hex(32)
        elif mode == "production" and len(secret_key) < 16:
            raise ConfigError("SECRET_KEY is too short: use at least 16 random characters (32 or more is better).")

        instance_path = Path(env.get("DASHBOARD_INSTANCE_PATH", "") or DEFAULT_INSTANCE_PATH)
        database_url = env.get("DATABASE_URL", "").strip() or f"sqlite:///{instance_path / 'dashboard.sqlite3'}"

        api_url = env.get("POSTMETRIC_API_URL", "").strip() or None
        api_key = env.get("POSTMETRIC_API_KEY", "").strip() or None
        if api_url:
            api_url = validate_base_url(api_url)
        if bool(api_url) != bool(api_key):
            missing = "POSTMETRIC_API_KEY" if api_url else "POSTMETRIC_API_URL"
            raise ConfigError(f"{missing} is not set: POSTMETRIC_API_URL and POSTMETRIC_API_KEY go together.")

        return cls(
            secret_key=secret_key,
            database_url=database_url,
            mode=mode,
            postmetric_api_url=api_url,
            postmetric_api_key=api_key,
            visitor_cache_ttl=_number(env, "VISITOR_CACHE_TTL", 60.0),
            visitor_cache_max_entries=int(_number(env, "VISITOR_CACHE_MAX_ENTRIES", 256, minimum=1)),
            visitor_cache_max_bytes=int(_number(env, "VISITOR_CACHE_MAX_MB", 64, minimum=1) * 1024 * 1024),
            redis_url=env.get("REDIS_URL", "").strip() or None,
            upstream_connect_timeout=_number(env, "POSTMETRIC_CONNECT_TIMEOUT", 3.05, minimum=0.1),
            upstream_read_timeout=_number(env, "POSTMETRIC_READ_TIMEOUT", 10.0, minimum=0.1),
            upstream_deadline=_number(env, "POSTMETRIC_DEADLINE", 10.0, minimum=0.1),
            upstream_max_body_bytes=int(_number(env, "POSTMETRIC_MAX_BODY_BYTES", 20 * 1024 * 1024, minimum=1024)),
            upstream_budget_per_minute=int(_number(env, "POSTMETRIC_BUDGET_PER_MINUTE", 100, minimum=1)),
            session_cookie_secure=_flag(env, "SESSION_COOKIE_SECURE", False),
            instance_path=instance_path,
            encryption_key=_encryption_key(env),
            audit_retention_days=int(_number(env, "AUDIT_RETENTION_DAYS", 90, minimum=1)),
            frame_ancestors=_frame_ancestors(env),
            trusted_proxies=int(_number(env, "TRUSTED_PROXIES", 0)),
            login_limit_per_account=_rate_limit(env, "LOGIN_LIMIT_PER_ACCOUNT", "5 per 15 minutes"),
            login_limit_per_address=_rate_limit(env, "LOGIN_LIMIT_PER_ADDRESS", "30 per 15 minutes"),
            set_password_link_hours=_number(env, "SET_PASSWORD_LINK_HOURS", 48.0, minimum=0.1),
            postmetric_allowed_hosts=_host_list(env, "POSTMETRIC_ALLOWED_HOSTS"),
            allow_private_upstreams=_flag(env, "ALLOW_PRIVATE_UPSTREAMS", False),
        )
