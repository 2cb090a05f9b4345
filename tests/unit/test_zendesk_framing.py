"""Framing: /embed names one Zendesk origin, every other page keeps today's policy; the
test-only origin cannot be set outside tests."""
from __future__ import annotations

import pytest
from flask import Flask, Response

from dashboard import security
from dashboard.config import ConfigError, Settings


def served(settings: Settings, origin: str | None) -> Response:
    app = Flask(__name__)
    security.init_app(app, settings)

    @app.get("/")
    def page():
        response = Response("page")
        return security.allow_framing_by(response, origin) if origin else response

    return app.test_client().get("/")


def test_a_framed_response_names_only_its_origin_and_no_x_frame_options():
    response = served(Settings(mode="test"), "https://acme.zendesk.com")
    assert "frame-ancestors https://acme.zendesk.com" in response.headers["Content-Security-Policy"]
    assert "script-src 'self'" in response.headers["Content-Security-Policy"]
    assert "X-Frame-Options" not in response.headers


def test_other_responses_keep_the_configured_policy():
    response = served(Settings(mode="test"), None)
    assert "frame-ancestors 'none'" in response.headers["Content-Security-Policy"]
    assert response.headers["X-Frame-Options"] == "DENY"


def test_the_zendesk_origin_override_is_for_tests_only():
    assert Settings(mode="test", zendesk_origin_for_tests="http://127.0.0.2:8123").zendesk_origin_for_tests
    with pytest.raises((ConfigError, ValueError), match="tests only"):
        Settings(mode="demo", zendesk_origin_for_tests="http://127.0.0.2:8123")
    with pytest.raises((ConfigError, ValueError), match="tests only"):
        Settings(mode="test", zendesk_origin_for_tests="http://x; script-src *")
