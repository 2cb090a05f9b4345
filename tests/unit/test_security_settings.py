"""The settings added for hardening; the security header and cookie helpers."""
from __future__ import annotations

import pytest

from dashboard import limiter_storage_uri
from dashboard.config import ConfigError, Settings
from dashboard.security import content_security_policy, secure_cookie

BASE = {"SECRET_KEY": "s" * 32}


def test_defaults():
    settings = Settings.from_env(BASE)
    assert settings.frame_ancestors == "'none'"
    assert settings.login_limit_per_account == "5 per 15 minutes"
    assert settings.set_password_link_hours == 48


def test_reads_the_new_variables():
    settings = Settings.from_env(
        {
            **BASE,
            "FRAME_ANCESTORS": "'self'  https://intranet.example.com",
            "LOGIN_LIMIT_PER_ACCOUNT": "3 per 10 minutes",
            "LOGIN_LIMIT_PER_ADDRESS": "50/hour",
            "SET_PASSWORD_LINK_HOURS": "24",
        }
    )
    assert settings.frame_ancestors == "'self' https://intranet.example.com"
    assert (settings.login_limit_per_account, settings.login_limit_per_address) == ("3 per 10 minutes", "50/hour")
    assert settings.set_password_link_hours == 24


@pytest.mark.parametrize(
    "env,message",
    [
        ({"FRAME_ANCESTORS": "'none'; script-src *"}, "FRAME_ANCESTORS must be"),
        ({"FRAME_ANCESTORS": "https://a.example\nX-Injected: 1"}, "FRAME_ANCESTORS must be"),
        ({"LOGIN_LIMIT_PER_ACCOUNT": "lots"}, "LOGIN_LIMIT_PER_ACCOUNT must be a rate"),
    ],
)
def test_bad_values_are_named(env, message):
    with pytest.raises(ConfigError, match=message):
        Settings.from_env({**BASE, **env})


def test_limits_are_kept_in_redis_when_it_is_configured():
    assert limiter_storage_uri(Settings.from_env(BASE)) == "memory://"
    assert limiter_storage_uri(Settings.from_env({**BASE, "REDIS_URL": "redis://cache:6379/1"})) == "redis://cache:6379/1"


def test_csp_and_cookie_helpers():
    policy = content_security_policy("'none'")
    assert "script-src 'self'" in policy and "unsafe" not in policy and policy.endswith("frame-ancestors 'none'")
    assert secure_cookie("session=x; HttpOnly; Path=/") == "session=x; HttpOnly; Path=/; Secure"
    assert secure_cookie("session=x; Secure; HttpOnly") == "session=x; Secure; HttpOnly"
