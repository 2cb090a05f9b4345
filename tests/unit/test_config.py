"""Settings from the environment, validated at start-up, declared once."""
from __future__ import annotations

import os
import re
from pathlib import Path

import pytest
from cryptography.fernet import Fernet
from pydantic import ValidationError

from dashboard.config import ENVIRONMENT_VARIABLES, PROJECT_ROOT, ConfigError, Settings, configuration_table
from dashboard.postmetric.client import PostMetricClient

SECRET = "s" * 32
FERNET_KEY = Fernet.generate_key().decode()

# Every variable the declaration reads: the text set, the attribute the app reads, and
# what must arrive there (each unlike its default, so a variable that is not read fails).
EVERY_VARIABLE = {
    "DASHBOARD_MODE": ("demo", "mode", "demo"),
    "DASHBOARD_INSTANCE_PATH": ("/srv/lookup/instance", "instance_path", Path("/srv/lookup/instance")),
    "DASHBOARD_ENV_FILE": ("/etc/lookup.env", "env_file", "/etc/lookup.env"),
    "SECRET_KEY": (SECRET, "secret_key", SECRET),
    "DATABASE_URL": ("postgresql://lookup@db.internal/lookup", "database_url", "postgresql://lookup@db.internal/lookup"),
    "POSTMETRIC_API_URL": ("https://analytics.example.com/", "postmetric_api_url", "https://analytics.example.com"),
    "POSTMETRIC_API_KEY": ("pm_" + "a" * 64, "postmetric_api_key", "pm_" + "a" * 64),
    "DASHBOARD_ENCRYPTION_KEY": (FERNET_KEY, "encryption_key", FERNET_KEY),
    "VISITOR_CACHE_TTL": ("30", "visitor_cache_ttl", 30.0),
    "VISITOR_CACHE_MAX_ENTRIES": ("10", "visitor_cache_max_entries", 10),
    "VISITOR_CACHE_MAX_MB": ("2.5", "visitor_cache_max_bytes", 2_621_440),
    "REDIS_URL": ("redis://cache:6379/1", "redis_url", "redis://cache:6379/1"),
    "POSTMETRIC_CONNECT_TIMEOUT": ("1.5", "upstream_connect_timeout", 1.5),
    "POSTMETRIC_READ_TIMEOUT": ("20", "upstream_read_timeout", 20.0),
    "POSTMETRIC_DEADLINE": ("25", "upstream_deadline", 25.0),
    "POSTMETRIC_MAX_BODY_BYTES": ("4096", "upstream_max_body_bytes", 4096),
    "POSTMETRIC_BUDGET_PER_MINUTE": ("60", "upstream_budget_per_minute", 60),
    "POSTMETRIC_INTERACTIVE_RESERVE": ("0.3", "budget_interactive_reserve", 0.3),
    "POSTMETRIC_AGENT_SHARE": ("0.5", "budget_agent_share", 0.5),
    "POSTMETRIC_AGENT_MINIMUM": ("5", "budget_agent_minimum", 5),
    "SESSION_COOKIE_SECURE": ("yes", "session_cookie_secure", True),
    "LOGIN_LIMIT_PER_ACCOUNT": ("3 per 10 minutes", "login_limit_per_account", "3 per 10 minutes"),
    "LOGIN_LIMIT_PER_ADDRESS": ("50/hour", "login_limit_per_address", "50/hour"),
    "SET_PASSWORD_LINK_HOURS": ("24", "set_password_link_hours", 24.0),
    "AUDIT_RETENTION_DAYS": ("30", "audit_retention_days", 30),
    "FRAME_ANCESTORS": ("'self'  https://intranet.example.com", "frame_ancestors", "'self' https://intranet.example.com"),
    "TRUSTED_PROXIES": ("2", "trusted_proxies", 2),
    "FORWARDED_ALLOW_IPS": ("10.0.0.1,10.0.0.2", "forwarded_allow_ips", "10.0.0.1,10.0.0.2"),
    "POSTMETRIC_TICKET_URL_TEMPLATE": (" https://acme.zendesk.com/agent/tickets/{ticket} ", "postmetric_ticket_url_template", "https://acme.zendesk.com/agent/tickets/{ticket}"),
    "POSTMETRIC_ALLOWED_HOSTS": ("pm.internal, 10.2.0.0/16", "postmetric_allowed_hosts", ("pm.internal", "10.2.0.0/16")),
    "ALLOW_PRIVATE_UPSTREAMS": ("on", "allow_private_upstreams", True),
    "DATABASE_POOL_SIZE": ("4", "database_pool_size", 4),
    "METRICS_TOKEN": ("m" * 24, "metrics_token", "m" * 24),
    "LOG_FORMAT": ("text", "log_format", "text"),
    "READINESS_TIMEOUT": ("0.5", "readiness_timeout", 0.5),
}


def test_production_refuses_to_start_without_a_secret_key():
    with pytest.raises(ConfigError, match="SECRET_KEY is not set"):
        Settings.from_env({})


def test_demo_and_tests_make_up_a_secret():
    assert len(Settings.from_env({}, mode="demo").secret_key) >= 32
    assert len(Settings.from_env({"DASHBOARD_MODE": "test"}).secret_key) >= 32


def test_the_test_sets_every_declared_variable():
    assert set(EVERY_VARIABLE) == set(ENVIRONMENT_VARIABLES.values())


def test_every_declared_variable_arrives():
    defaults = Settings.from_env({"SECRET_KEY": "another secret 0123456789"})
    settings = Settings.from_env({name: raw for name, (raw, _, _) in EVERY_VARIABLE.items()})
    for name, (_, attribute, expected) in EVERY_VARIABLE.items():
        assert getattr(defaults, attribute) != expected, f"{name}: pick a value unlike the default"
        assert getattr(settings, attribute) == expected, name
    for secret in (SECRET, "pm_" + "a" * 64, FERNET_KEY, "m" * 24):
        assert secret not in repr(settings) and secret not in str(settings)


def test_defaults():
    settings = Settings.from_env({"SECRET_KEY": SECRET})
    assert (settings.mode, settings.testing) == ("production", False)
    assert settings.database_url == f"sqlite:///{PROJECT_ROOT / 'instance' / 'dashboard.sqlite3'}"
    assert (settings.upstream_connect_timeout, settings.upstream_read_timeout, settings.upstream_deadline) == (3.05, 10, 10)
    assert settings.visitor_cache_max_bytes == 64 * 1024 * 1024 and settings.upstream_max_body_bytes == 20 * 1024 * 1024
    assert settings.audit_retention_days == 90 and settings.set_password_link_hours == 48
    assert settings.frame_ancestors == "'none'" and settings.forwarded_allow_ips == "127.0.0.1"
    assert settings.encryption_key is None and settings.redis_url is None and settings.postmetric_api_url is None
    assert (settings.login_limit_per_account, settings.login_limit_per_address) == ("5 per 15 minutes", "30 per 15 minutes")


def test_the_demo_keeps_its_own_database_unless_one_is_set(tmp_path):
    assert Settings.from_env({"DASHBOARD_INSTANCE_PATH": str(tmp_path)}, mode="demo").database_url == f"sqlite:///{tmp_path / 'demo.sqlite3'}"
    assert Settings.from_env({"DATABASE_URL": "sqlite:///chosen.db"}, mode="demo").database_url == "sqlite:///chosen.db"
    assert Settings.from_env({"DASHBOARD_INSTANCE_PATH": str(tmp_path)}, mode="test").database_url == f"sqlite:///{tmp_path / 'dashboard.sqlite3'}"


def test_blank_values_are_unset_and_white_space_is_dropped():
    settings = Settings.from_env({"SECRET_KEY": f"  {SECRET} ", "VISITOR_CACHE_TTL": "   ", "AUDIT_RETENTION_DAYS": " 7 ", "REDIS_URL": ""})
    assert (settings.secret_key, settings.visitor_cache_ttl, settings.audit_retention_days, settings.redis_url) == (SECRET, 60, 7, None)


# (lowest value accepted, a value just below it) for every bounded number.
BOUNDS = {
    "VISITOR_CACHE_TTL": ("0", "-0.5"),
    "VISITOR_CACHE_MAX_ENTRIES": ("1", "0"),
    "VISITOR_CACHE_MAX_MB": ("1", "0.5"),
    "POSTMETRIC_CONNECT_TIMEOUT": ("0.1", "0.05"),
    "POSTMETRIC_READ_TIMEOUT": ("0.1", "0"),
    "POSTMETRIC_DEADLINE": ("0.1", "0.09"),
    "POSTMETRIC_MAX_BODY_BYTES": ("1024", "1023"),
    "POSTMETRIC_BUDGET_PER_MINUTE": ("1", "0"),
    "POSTMETRIC_INTERACTIVE_RESERVE": ("0", "-0.1"),
    "POSTMETRIC_AGENT_SHARE": ("0.01", "0.005"),
    "POSTMETRIC_AGENT_MINIMUM": ("1", "0"),
    "SET_PASSWORD_LINK_HOURS": ("0.1", "0"),
    "AUDIT_RETENTION_DAYS": ("1", "0"),
    "TRUSTED_PROXIES": ("0", "-1"),
    "DATABASE_POOL_SIZE": ("1", "0"),
    "READINESS_TIMEOUT": ("0.1", "0.05"),
}


def test_every_number_has_its_bounds_tested():
    numbers = {name for attribute, name in ENVIRONMENT_VARIABLES.items() if Settings.model_fields[attribute].annotation in (int, float)}
    assert numbers == set(BOUNDS)


@pytest.mark.parametrize("name", sorted(BOUNDS))
def test_bounds(name):
    lowest, below = BOUNDS[name]
    attribute = next(a for a, n in ENVIRONMENT_VARIABLES.items() if n == name)
    value = getattr(Settings.from_env({"SECRET_KEY": SECRET, name: lowest}), attribute)
    assert value == float(lowest)
    with pytest.raises(ConfigError, match=rf"^{name} must be at least {re.escape(lowest)}, not '{re.escape(below)}'\.$"):
        Settings.from_env({"SECRET_KEY": SECRET, name: below})
    for word in ("soon", "nan", "inf", "1,5"):
        with pytest.raises(ConfigError, match=rf"^{name} must be a number of seconds or a count, not '{word}'\.$"):
            Settings.from_env({"SECRET_KEY": SECRET, name: word})


@pytest.mark.parametrize("name,highest,above", [("POSTMETRIC_INTERACTIVE_RESERVE", "0.9", "0.95"), ("POSTMETRIC_AGENT_SHARE", "1", "1.5")])
def test_shares_have_a_ceiling(name, highest, above):
    attribute = next(a for a, n in ENVIRONMENT_VARIABLES.items() if n == name)
    assert getattr(Settings.from_env({"SECRET_KEY": SECRET, name: highest}), attribute) == float(highest)
    with pytest.raises(ConfigError, match=rf"^{name} must be at most {re.escape(highest)}, not '{re.escape(above)}'\.$"):
        Settings.from_env({"SECRET_KEY": SECRET, name: above})


@pytest.mark.parametrize(
    "env,message",
    [
        ({"POSTMETRIC_API_URL": "ftp://x"}, "POSTMETRIC_API_URL must be an http:// or https:// URL"),
        ({"POSTMETRIC_API_URL": "https://x.example"}, "POSTMETRIC_API_KEY is not set"),
        ({"POSTMETRIC_API_KEY": "pm_x"}, "POSTMETRIC_API_URL is not set"),
        ({"VISITOR_CACHE_TTL": "soon"}, "VISITOR_CACHE_TTL must be a number"),
        ({"AUDIT_RETENTION_DAYS": "30.5"}, "AUDIT_RETENTION_DAYS must be a number of seconds or a count, not '30.5'"),
        ({"SECRET_KEY": "short"}, "too short"),
        ({"SESSION_COOKIE_SECURE": "maybe"}, "SESSION_COOKIE_SECURE must be true or false, not 'maybe'"),
        ({"DASHBOARD_MODE": "staging"}, "DASHBOARD_MODE must be production, demo or test, not 'staging'"),
        ({"DASHBOARD_ENCRYPTION_KEY": "not a fernet key"}, "DASHBOARD_ENCRYPTION_KEY must be a Fernet key"),
        ({"FRAME_ANCESTORS": "'none'; script-src *"}, "FRAME_ANCESTORS must be"),
        ({"FRAME_ANCESTORS": "https://a.example\nX-Injected: 1"}, "FRAME_ANCESTORS must be"),
        ({"FRAME_ANCESTORS": "'none' 'self'"}, "FRAME_ANCESTORS must be"),
        ({"LOGIN_LIMIT_PER_ACCOUNT": "lots"}, "LOGIN_LIMIT_PER_ACCOUNT must be a rate such as '5 per 15 minutes', not 'lots'"),
        ({"LOGIN_LIMIT_PER_ADDRESS": "5 per fortnight"}, "LOGIN_LIMIT_PER_ADDRESS must be a rate"),
    ],
)
def test_bad_values_are_named(env, message):
    with pytest.raises(ConfigError, match=re.escape(message)):
        Settings.from_env({"SECRET_KEY": SECRET, **env})


def test_a_mode_given_by_the_caller_wins_and_is_checked():
    assert Settings.from_env({"DASHBOARD_MODE": "production"}, mode="test").testing
    with pytest.raises(ConfigError, match="DASHBOARD_MODE must be production, demo or test, not 'dev'"):
        Settings.from_env({}, mode="dev")


def test_settings_are_immutable_and_changes_are_checked():
    settings = Settings.from_env({"SECRET_KEY": SECRET})
    with pytest.raises(ValidationError):
        settings.upstream_deadline = 1  # type: ignore[misc]
    changed = settings.with_changes(upstream_deadline=2, postmetric_api_url="https://x.example/", postmetric_api_key="pm_x")
    assert (changed.upstream_deadline, changed.postmetric_api_url, changed.secret_key) == (2, "https://x.example", SECRET)
    assert settings.upstream_deadline == 10 and settings.postmetric_api_url is None
    with pytest.raises(ConfigError, match="POSTMETRIC_DEADLINE must be at least 0.1"):
        settings.with_changes(upstream_deadline=0)
    with pytest.raises(ConfigError, match="POSTMETRIC_API_KEY is not set"):
        settings.with_changes(postmetric_api_url="https://x.example")


def test_building_settings_directly_reads_no_environment(monkeypatch, tmp_path):
    monkeypatch.setenv("VISITOR_CACHE_TTL", "5")
    monkeypatch.setenv("SECRET_KEY", SECRET)
    settings = Settings(mode="test", instance_path=tmp_path)
    assert settings.visitor_cache_ttl == 60 and settings.secret_key != SECRET
    assert settings.database_url == f"sqlite:///{tmp_path / 'dashboard.sqlite3'}"


@pytest.fixture
def clean_environment(monkeypatch):
    """The process environment without any declared variable."""
    for name in ENVIRONMENT_VARIABLES.values():
        monkeypatch.delenv(name, raising=False)
    return monkeypatch


def test_the_process_environment_wins_over_the_env_file(clean_environment, tmp_path):
    env_file = tmp_path / "lookup.env"
    env_file.write_text(f"SECRET_KEY={SECRET}\nVISITOR_CACHE_TTL=7\nREDIS_URL=redis://from-file:6379/0\nUNRELATED=1\n")
    clean_environment.setenv("DASHBOARD_ENV_FILE", str(env_file))
    clean_environment.setenv("VISITOR_CACHE_TTL", "5")
    settings = Settings.from_env()
    assert (settings.secret_key, settings.visitor_cache_ttl, settings.redis_url) == (SECRET, 5, "redis://from-file:6379/0")
    assert "REDIS_URL" not in os.environ  # read, not copied into the environment
    # A mapping given by the caller is read alone, without the file.
    with pytest.raises(ConfigError, match="SECRET_KEY is not set"):
        Settings.from_env({"DASHBOARD_ENV_FILE": str(env_file)})


def test_the_env_file_may_be_missing(clean_environment, tmp_path):
    clean_environment.setenv("DASHBOARD_ENV_FILE", str(tmp_path / "none.env"))
    clean_environment.setenv("SECRET_KEY", SECRET)
    assert Settings.from_env().visitor_cache_ttl == 60


def readme_configuration_table() -> str:
    readme = (PROJECT_ROOT / "README.md").read_text(encoding="utf-8")
    section = readme.split("\n## Configuration\n", 1)[1].split("\n## ", 1)[0]
    return "".join(line + "\n" for line in section.splitlines() if line.startswith("|"))


def test_the_readme_documents_exactly_the_declared_variables():
    documented = re.findall(r"^\| `([A-Z_]+)` \|", readme_configuration_table(), flags=re.MULTILINE)
    assert sorted(documented) == sorted(ENVIRONMENT_VARIABLES.values())


def test_the_readme_table_is_the_declaration():
    """On failure, paste the output of
    python -c "from dashboard.config import configuration_table as t; print(t(), end='')"
    into the README's Configuration section."""
    assert readme_configuration_table() == configuration_table()


def test_the_client_defaults_are_the_declared_ones():
    client = PostMetricClient("https://analytics.example.com", "pm_x")
    defaults = Settings(mode="test")
    assert (client.connect_timeout, client.read_timeout, client.deadline, client.max_body_bytes) == (
        defaults.upstream_connect_timeout, defaults.upstream_read_timeout, defaults.upstream_deadline, defaults.upstream_max_body_bytes,
    )
    client.close()


def test_a_short_metrics_token_is_refused_without_repeating_it():
    with pytest.raises(ConfigError, match="METRICS_TOKEN is too short") as raised:
        Settings.from_env({"SECRET_KEY": SECRET, "METRICS_TOKEN": "hunter2"})
    assert "hunter2" not in str(raised.value)
