"""Settings from the environment, validated at start-up."""
from __future__ import annotations

import pytest

from dashboard.config import ConfigError, Settings


def test_production_refuses_to_start_without_a_secret_key():
    with pytest.raises(ConfigError, match="SECRET_KEY is not set"):
        Settings.from_env({})


def test_demo_and_tests_make_up_a_secret():
    assert len(Settings.from_env({}, mode="demo").secret_key) >= 32


def test_reads_every_documented_variable(tmp_path):
    settings = Settings.from_env(
        {
            "SECRET_KEY": "s" * 32,
            "DATABASE_URL": "sqlite:///x.db",
            "POSTMETRIC_API_URL": "https://analytics.example.com/",
            "POSTMETRIC_API_KEY": "pm_" + "a" * 64,
            "VISITOR_CACHE_TTL": "30",
            "REDIS_URL": "redis://localhost:6379/0",
        }
    )
    assert settings.postmetric_api_url == "https://analytics.example.com"
    assert settings.visitor_cache_ttl == 30
    assert settings.database_url == "sqlite:///x.db"
    assert settings.redis_url == "redis://localhost:6379/0"
    assert "pm_" not in repr(settings) and "s" * 32 not in repr(settings)


@pytest.mark.parametrize(
    "env,message",
    [
        ({"POSTMETRIC_API_URL": "ftp://x"}, "http:// or https://"),
        ({"POSTMETRIC_API_URL": "https://x.example"}, "POSTMETRIC_API_KEY is not set"),
        ({"POSTMETRIC_API_KEY": "pm_x"}, "POSTMETRIC_API_URL is not set"),
        ({"VISITOR_CACHE_TTL": "soon"}, "VISITOR_CACHE_TTL must be a number"),
        ({"SECRET_KEY": "short"}, "too short"),
    ],
)
def test_bad_values_are_named(env, message):
    with pytest.raises(ConfigError, match=message):
        Settings.from_env({"SECRET_KEY": "s" * 32, **env})
