"""Settings read from the environment once, validated at start-up.

Every setting is declared once, below in :class:`Settings`: its environment variable, type,
default, bounds and one-line meaning. The README's configuration table is rendered from
that declaration (:func:`configuration_table`) and a test keeps the two equal.
:meth:`Settings.from_env` is the only reader of ``os.environ`` and of the ``.env`` file. A
missing secret in production stops the start with a sentence that says what to set.
"""
from __future__ import annotations

import os
import re
import secrets
from pathlib import Path
from typing import Annotated, Any, Literal, Mapping, get_args
from urllib.parse import urlsplit

from pydantic import Field, ValidationError, ValidationInfo, field_validator, model_validator
from pydantic_settings import BaseSettings, EnvSettingsSource, NoDecode, SettingsConfigDict

PROJECT_ROOT = Path(__file__).resolve().parent.parent
MB = 1024 * 1024


class ConfigError(ValueError):
    """The environment does not describe a usable configuration."""


def setting(
    default: Any, env: str | None, meaning: str, *, shown: str | None = None, accepts: str | None = None, **constraints: Any
) -> Any:
    """Declare one setting: its environment variable (None: not read from the
    environment), default, one-line meaning and bounds (``ge=...``); ``shown`` and
    ``accepts`` say in the README's words what the default is and which text is accepted,
    where the type and bounds do not say it."""
    extra = {key: value for key, value in (("shown_default", shown), ("accepts", accepts)) if value is not None} or None
    return Field(default, validation_alias=env, description=meaning, json_schema_extra=extra, **constraints)


# One CSP source: a quoted keyword, a scheme ("https:") or a host with optional scheme,
# port and path. Nothing that could end the directive or the header.
_CSP_SOURCE = re.compile(
    r"'(?:self|none)'|[a-z][a-z0-9+.-]*:|(?:[a-z][a-z0-9+.-]*://)?(?:\*\.)?[A-Za-z0-9.-]+(?::(?:\d+|\*))?(?:/[A-Za-z0-9._~/%-]*)?"
)


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


def _host_list(value: Any) -> tuple[str, ...]:
    """Host names, addresses or networks separated by commas or spaces."""
    if isinstance(value, str):
        return tuple(entry for entry in re.split(r"[,\s]+", value.strip()) if entry)
    return tuple(value)


class Settings(BaseSettings):
    """The whole configuration of one app instance.

    Built with keywords (``Settings(secret_key=..., mode="test")``) it reads nothing from
    the environment; :meth:`from_env` reads the environment. Immutable: derive a changed
    copy with :meth:`with_changes`.
    """

    # Frozen; keywords by attribute name as well as by variable name; no other source
    # than the keywords (from_env supplies the environment itself).
    model_config = SettingsConfigDict(frozen=True, populate_by_name=True, case_sensitive=True, extra="forbid")

    # Declared first: the defaults of secret_key and database_url depend on them.
    mode: Literal["production", "demo", "test"] = setting(
        "production", "DASHBOARD_MODE",
        "`demo` and `test` make up a secret key when none is set (`dashboard demo` chooses `demo` itself)",
    )
    instance_path: Path = setting(PROJECT_ROOT / "instance", "DASHBOARD_INSTANCE_PATH", "folder for the SQLite file", shown="`instance/`", accepts="a path")
    env_file: str = setting(
        ".env", "DASHBOARD_ENV_FILE",
        "file of further variables read at start (`NAME=value` lines); a variable set in the environment wins",
        accepts="a path",
    )
    secret_key: str = setting(
        "", "SECRET_KEY", "signs sessions and forms; **required** in production: the app refuses to start without it",
        shown="none", accepts="text, 16 characters or more in production", repr=False, validate_default=True,
    )
    database_url: str = setting(
        "", "DATABASE_URL", "SQLAlchemy URL of the dashboard's own database; an empty database is set up at start",
        accepts="a SQLAlchemy URL", shown="SQLite in `instance/dashboard.sqlite3` (`demo.sqlite3` for `dashboard demo`)", validate_default=True,
    )
    postmetric_api_url: str | None = setting(
        None, "POSTMETRIC_API_URL",
        "base URL of the PostMetric API (`https://your-domain.com`) of the default site; admins can add more sites",
        accepts="an http:// or https:// URL",
    )
    postmetric_api_key: str | None = setting(
        None, "POSTMETRIC_API_KEY", "that site's API key (`pm_...`); only ever sent server-side", repr=False
    )
    # Encrypts the sites' API keys at rest; None: a key derived from secret_key.
    encryption_key: str | None = setting(
        None, "DASHBOARD_ENCRYPTION_KEY",
        "Fernet key that encrypts the sites' API keys in the database "
        "(`python -c 'from cryptography.fernet import Fernet; print(Fernet.generate_key().decode())'`)",
        shown="a key derived from `SECRET_KEY`", accepts="a Fernet key", repr=False,
    )
    visitor_cache_ttl: float = setting(60.0, "VISITOR_CACHE_TTL", "seconds a fetched visitor is reused", ge=0, allow_inf_nan=False)
    visitor_cache_max_entries: int = setting(256, "VISITOR_CACHE_MAX_ENTRIES", "most visitors kept in that cache", ge=1)
    visitor_cache_max_mb: float = setting(
        64.0, "VISITOR_CACHE_MAX_MB", "most megabytes that cache holds (big visitors weigh more)", ge=1, allow_inf_nan=False
    )
    redis_url: str | None = setting(
        None, "REDIS_URL", "optional store shared by every instance and worker: visitor cache, single flight, rate budget, retry progress and "
        "login throttling (`redis://host:6379/0`)",
        shown="none: each process keeps its own", accepts="a Redis URL",
    )
    upstream_connect_timeout: float = setting(
        3.05, "POSTMETRIC_CONNECT_TIMEOUT", "seconds to connect, per attempt", ge=0.1, allow_inf_nan=False
    )
    upstream_read_timeout: float = setting(
        10.0, "POSTMETRIC_READ_TIMEOUT", "seconds to wait for the answer, per attempt", ge=0.1, allow_inf_nan=False
    )
    upstream_deadline: float = setting(
        10.0, "POSTMETRIC_DEADLINE", "total seconds a look-up may spend, retries included", ge=0.1, allow_inf_nan=False
    )
    upstream_max_body_bytes: int = setting(
        20 * MB, "POSTMETRIC_MAX_BODY_BYTES", "largest upstream answer read, in bytes", shown="20971520 (20 MB)", ge=1024
    )
    upstream_budget_per_minute: int = setting(
        100, "POSTMETRIC_BUDGET_PER_MINUTE",
        "requests per minute the dashboard sends per key (without `REDIS_URL`, split evenly between `serve --workers`)", ge=1,
    )
    budget_interactive_reserve: float = setting(
        0.2, "POSTMETRIC_INTERACTIVE_RESERVE",
        "share of each key's budget kept for agents' own look-ups: live-view ticks and exports only spend above it",
        accepts="a number from 0 to 0.9", ge=0, le=0.9, allow_inf_nan=False,
    )
    budget_agent_share: float = setting(
        1 / 3, "POSTMETRIC_AGENT_SHARE",
        "most of a key's budget one agent may spend in a minute while colleagues look up too",
        shown="1/3 (a third)", accepts="a number from 0.01 to 1", ge=0.01, le=1, allow_inf_nan=False,
    )
    budget_agent_minimum: int = setting(
        10, "POSTMETRIC_AGENT_MINIMUM", "look-ups a minute every agent may make, whatever that share comes to", ge=1
    )
    session_cookie_secure: bool = setting(
        False, "SESSION_COOKIE_SECURE", "`true` when served over https (cookies are Secure on https requests anyway)"
    )
    login_limit_per_account: str = setting(
        "5 per 15 minutes", "LOGIN_LIMIT_PER_ACCOUNT",
        "login attempts allowed per e-mail address (`5 per 15 minutes`, `10/hour`; several separated by `;`)",
        accepts="a rate",
    )
    login_limit_per_address: str = setting(
        "30 per 15 minutes", "LOGIN_LIMIT_PER_ADDRESS",
        "login attempts allowed per client address; everyone behind one office address shares it (see Security)",
        accepts="a rate",
    )
    set_password_link_hours: float = setting(
        48.0, "SET_PASSWORD_LINK_HOURS", "how long a set-password link works", ge=0.1, allow_inf_nan=False
    )
    audit_retention_days: int = setting(90, "AUDIT_RETENTION_DAYS", "days of audit events `dashboard prune-audit` keeps", ge=1)
    frame_ancestors: str = setting(
        "'none'", "FRAME_ANCESTORS",
        "who may show the dashboard in a frame: a CSP source list such as `'self' https://intranet.example.com`",
        accepts="a CSP source list",
    )
    trusted_proxies: int = setting(
        0, "TRUSTED_PROXIES",
        "how many reverse proxies stand in front of the dashboard; their `X-Forwarded-For`/`-Proto`/`-Host` then give "
        "the client's address (login throttling) and the scheme (Secure cookies)", ge=0,
    )
    forwarded_allow_ips: str = setting(
        "127.0.0.1", "FORWARDED_ALLOW_IPS",
        "addresses (comma-separated, `*` for any) whose `X-Forwarded-Proto` `dashboard serve` trusts",
    )
    postmetric_ticket_url_template: str | None = setting(
        None, "POSTMETRIC_TICKET_URL_TEMPLATE",
        "where the default site's ticket references lead, such as `https://acme.zendesk.com/agent/tickets/{ticket}` "
        "(\"Seen before in tickets\" links each there)",
        accepts="an http(s) URL holding `{ticket}`",
    )
    # Where a site's key may be sent besides public addresses (see dashboard/addresses.py).
    postmetric_allowed_hosts: Annotated[tuple[str, ...], NoDecode] = setting(
        (), "POSTMETRIC_ALLOWED_HOSTS",
        "host names, addresses or networks (`pm.internal, 10.2.0.0/16`) a site's base URL may lead to even though "
        "they are private",
        shown="none", accepts="names, addresses or networks, separated by commas or spaces",
    )
    allow_private_upstreams: bool = setting(
        False, "ALLOW_PRIVATE_UPSTREAMS",
        "`true` lets base URLs lead to any private, loopback or link-local address (never multicast or unspecified)",
    )
    database_pool_size: int = setting(
        10, "DATABASE_POOL_SIZE",
        "database connections each server process keeps open (`dashboard serve --db-pool-size`); more open while "
        "every thread is busy and close again", ge=1,
    )
    metrics_token: str | None = setting(
        None, "METRICS_TOKEN",
        "bearer token that `GET /metrics` (Prometheus format) asks for; unset: there is no `/metrics`",
        shown="none: no `/metrics`", accepts="text, 16 characters or more", repr=False,
    )
    log_format: Literal["json", "text"] = setting(
        "json", "LOG_FORMAT", "one JSON object per log line, or plain text for people (`dashboard demo` uses `text`)"
    )
    readiness_timeout: float = setting(
        2.0, "READINESS_TIMEOUT", "seconds `/readyz` waits for the database and Redis to answer", ge=0.1, allow_inf_nan=False
    )
    # Not read from the environment: fixed by the product, changed by tests.
    server_threads: int = setting(32, None, "threads per server process; each site's upstream connection pool holds as many", ge=1)
    drain_flag: Path | None = setting(None, None, "file whose presence means a graceful shutdown has begun (set by `serve`)")
    timeline_page_size: int = setting(50, None, "page views rendered at once and per 'Load more'", ge=1)
    live_refresh_seconds: float = setting(15.0, None, "seconds between the live view's checks", gt=0)
    # The browser test plays Zendesk's agent workspace from a loopback origin; in
    # production the one origin allowed to frame /embed/zendesk is https://{subdomain}.zendesk.com.
    zendesk_origin_for_tests: str | None = setting(
        None, None, "test mode only: the origin standing in for every Zendesk account's (`http://127.0.0.2:8123`)"
    )

    @classmethod
    def settings_customise_sources(cls, settings_cls, init_settings, **other_sources):  # type: ignore[override]
        return (init_settings,)

    @field_validator("secret_key")
    @classmethod
    def _secret_key(cls, value: str, info: ValidationInfo) -> str:
        production = info.data.get("mode", "production") == "production"
        if not value:
            if production:
                raise ConfigError(
                    "SECRET_KEY is not set. Set SECRET_KEY to a long random string "
                    "(for example the output of: python -c 'import secrets; print(secrets.token_hex(32))') "
                    "and start again."
                )
            return secrets.token_hex(32)
        if production and len(value) < 16:
            raise ConfigError("SECRET_KEY is too short: use at least 16 random characters (32 or more is better).")
        return value

    @field_validator("database_url")
    @classmethod
    def _database_url(cls, value: str, info: ValidationInfo) -> str:
        if value:
            return value
        folder = info.data.get("instance_path", PROJECT_ROOT / "instance")
        return f"sqlite:///{folder / ('demo.sqlite3' if info.data.get('mode') == 'demo' else 'dashboard.sqlite3')}"

    @field_validator("postmetric_api_url")
    @classmethod
    def _api_url(cls, value: str | None) -> str | None:
        return validate_base_url(value) if value else value

    @field_validator("encryption_key")
    @classmethod
    def _encryption_key(cls, value: str | None) -> str | None:
        if not value:
            return value
        from cryptography.fernet import Fernet

        try:
            Fernet(value)
        except (ValueError, TypeError):
            raise ConfigError(
                "DASHBOARD_ENCRYPTION_KEY must be a Fernet key (32 bytes, URL-safe base64), for example the output of: "
                "python -c 'from cryptography.fernet import Fernet; print(Fernet.generate_key().decode())'."
            ) from None
        return value

    @field_validator("login_limit_per_account", "login_limit_per_address")
    @classmethod
    def _rate_limit(cls, value: str, info: ValidationInfo) -> str:
        """A Flask-Limiter rate such as "5 per 15 minutes" (several separated by ";")."""
        from limits import parse_many

        try:
            parse_many(value)
        except ValueError:
            name = env_name(info.field_name)
            raise ConfigError(f"{name} must be a rate such as '5 per 15 minutes', not {value!r}.") from None
        return value

    @field_validator("metrics_token")
    @classmethod
    def _metrics_token(cls, value: str | None) -> str | None:
        if value is not None and len(value) < 16:  # the sentence must not repeat the token
            raise ConfigError("METRICS_TOKEN is too short: use at least 16 random characters, or leave it unset.")
        return value

    @field_validator("postmetric_ticket_url_template")
    @classmethod
    def _ticket_url_template(cls, value: str | None) -> str | None:
        from dashboard.ticket_links import InvalidTemplate, clean_template

        try:
            return clean_template(value)
        except InvalidTemplate as problem:
            raise ConfigError(f"POSTMETRIC_TICKET_URL_TEMPLATE: {problem}") from None

    @field_validator("postmetric_allowed_hosts", mode="before")
    @classmethod
    def _allowed_hosts(cls, value: Any) -> tuple[str, ...]:
        return _host_list(value)

    @field_validator("frame_ancestors")
    @classmethod
    def _frame_ancestors(cls, value: str) -> str:
        sources = [source for source in value.split(" ") if source]  # split on spaces only: a tab or newline is refused
        valid = all(_CSP_SOURCE.fullmatch(source) for source in sources)
        if not sources or not valid or ("'none'" in sources and len(sources) > 1):
            raise ConfigError(
                f"FRAME_ANCESTORS must be a Content-Security-Policy source list such as 'none', 'self' or "
                f"https://intranet.example.com, not {value!r}."
            )
        return " ".join(sources)

    @model_validator(mode="after")
    def _site_is_complete(self) -> "Settings":
        if bool(self.postmetric_api_url) != bool(self.postmetric_api_key):
            missing = "POSTMETRIC_API_KEY" if self.postmetric_api_url else "POSTMETRIC_API_URL"
            raise ConfigError(f"{missing} is not set: POSTMETRIC_API_URL and POSTMETRIC_API_KEY go together.")
        if self.zendesk_origin_for_tests is not None and (
            self.mode != "test" or not re.fullmatch(r"https?://[A-Za-z0-9.-]+(?::\d+)?", self.zendesk_origin_for_tests)
        ):
            raise ConfigError("zendesk_origin_for_tests is for tests only: an http(s) origin, in test mode.")
        return self

    def __repr_args__(self):  # never print the secrets, nor much else
        return [(name, getattr(self, name)) for name in ("mode", "database_url", "postmetric_api_url")]

    def __str__(self) -> str:
        return repr(self)

    @property
    def testing(self) -> bool:
        return self.mode == "test"

    @property
    def visitor_cache_max_bytes(self) -> int:
        return int(self.visitor_cache_max_mb * MB)

    def with_changes(self, **changes: object) -> "Settings":
        """A copy with ``changes`` (attribute names), validated like the original."""
        return _validated({**self.model_dump(), **changes})

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None, *, mode: str | None = None) -> "Settings":
        """Read and validate the configuration; raise ConfigError with what to set.

        ``env`` None: the process environment, over the file that DASHBOARD_ENV_FILE names
        (variables already set win). A mapping: only that mapping (no file). ``mode``, when
        given, overrides DASHBOARD_MODE. Blank values count as unset.
        """
        if env is None:
            from dotenv import dotenv_values

            env_file = _Environment(os.environ)().get("DASHBOARD_ENV_FILE", default_of("env_file"))
            env = {**{k: v for k, v in dotenv_values(env_file).items() if v is not None}, **os.environ}
        values = _Environment(env)()
        if mode:
            values["DASHBOARD_MODE"] = mode
        return _validated(values)


# The declaration, read back: attribute name -> environment variable, for the settings
# read from the environment, in declaration order.
ENVIRONMENT_VARIABLES: dict[str, str] = {
    name: field.validation_alias for name, field in Settings.model_fields.items() if isinstance(field.validation_alias, str)
}


def env_name(attribute: str) -> str:
    return ENVIRONMENT_VARIABLES.get(attribute, attribute)


def default_of(attribute: str) -> Any:
    """The declared default of one setting (for code that takes the setting as an argument)."""
    return Settings.model_fields[attribute].get_default(call_default_factory=True)


class _Environment(EnvSettingsSource):
    """pydantic-settings' environment source over a given mapping, reading only the
    declared variables; surrounding white space is dropped and a blank value is unset."""

    def __init__(self, env: Mapping[str, str]) -> None:
        self._given = env
        super().__init__(Settings, case_sensitive=True)

    def _load_env_vars(self) -> Mapping[str, str | None]:
        names = set(ENVIRONMENT_VARIABLES.values())
        return {name: value.strip() for name, value in self._given.items() if name in names and value and value.strip()}


_NUMBER_ERRORS = frozenset({"float_parsing", "float_type", "int_parsing", "int_type", "int_from_float", "finite_number"})


def _validated(values: Mapping[str, Any]) -> Settings:
    """Settings from ``values``, or ConfigError with a sentence naming the variable."""
    try:
        return Settings(**values)
    except ValidationError as error:
        raise _sentence(error.errors(include_url=False)[0]) from None


def _sentence(problem: Mapping[str, Any]) -> ConfigError:
    """One validation problem as the sentence an operator reads."""
    context, raw = problem.get("ctx", {}), problem["input"]
    if isinstance(context.get("error"), ConfigError):  # a validator's own sentence
        return context["error"]
    attribute = str(problem["loc"][0]) if problem["loc"] else ""
    attribute = next((a for a, v in ENVIRONMENT_VARIABLES.items() if v == attribute), attribute)
    name = env_name(attribute)
    kind = problem["type"]
    if kind in _NUMBER_ERRORS:
        return ConfigError(f"{name} must be a number of seconds or a count, not {raw!r}.")
    if kind in {"greater_than_equal", "greater_than"}:
        return ConfigError(f"{name} must be at least {context.get('ge', context.get('gt')):g}, not {raw!r}.")
    if kind in {"less_than_equal", "less_than"}:
        return ConfigError(f"{name} must be at most {context.get('le', context.get('lt')):g}, not {raw!r}.")
    if kind == "bool_parsing":
        return ConfigError(f"{name} must be true or false, not {raw!r}.")
    if kind == "literal_error":
        choices = get_args(Settings.model_fields[attribute].annotation)
        return ConfigError(f"{name} must be {', '.join(choices[:-1])} or {choices[-1]}, not {raw!r}.")
    return ConfigError(f"{name} is not valid ({problem['msg']}): {raw!r}.")


def configuration_table() -> str:
    """The README's configuration table, rendered from the declaration."""
    rows = ["| variable | meaning | default | accepts |", "|---|---|---|---|"]
    for attribute, variable in ENVIRONMENT_VARIABLES.items():
        field = Settings.model_fields[attribute]
        extra = field.json_schema_extra or {}
        rows.append(f"| `{variable}` | {field.description} | {extra.get('shown_default') or _shown(field.default)} | {_accepts(field)} |")
    return "\n".join(rows) + "\n"


def _shown(default: Any) -> str:
    if isinstance(default, bool):
        return str(default).lower()
    if isinstance(default, (int, float)):
        return f"{default:g}"
    return f"`{default}`" if default else "none"


def _accepts(field: Any) -> str:
    floor = "".join(
        f" {sign} {getattr(meta, bound):g}"
        for meta in field.metadata
        for bound, sign in (("ge", "≥"), ("gt", ">"))
        if getattr(meta, bound, None) is not None
    )
    annotation = field.annotation
    if (field.json_schema_extra or {}).get("accepts"):
        return field.json_schema_extra["accepts"]
    if annotation is bool:
        return "true or false"
    if annotation is int:
        return "a whole number" + floor
    if annotation is float:
        return "a number" + floor
    choices = get_args(annotation)
    if choices and all(isinstance(choice, str) for choice in choices):
        return ", ".join(f"`{choice}`" for choice in choices)
    return "text"

