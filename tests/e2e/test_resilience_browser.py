"""What the agent sees while PostMetric misbehaves."""
from __future__ import annotations

import re

import pytest
from playwright.sync_api import Page, expect

from dashboard import create_app
from dashboard.demo import FakeApiServer
from tests.conftest import LiveServer, add_agent, make_settings
from tests.e2e.conftest import log_in


@pytest.fixture
def patient_server(tmp_path):
    """A dashboard that keeps retrying for 8 s, on a stand-in that takes 0.4 s an answer."""
    with FakeApiServer(latency=0.4) as api:
        app = create_app(make_settings(tmp_path, api.url, upstream_deadline=8.0, upstream_read_timeout=5.0))
        add_agent(app)
        with LiveServer(app) as server:
            yield server
        app.extensions["db_engine"].dispose()


def test_the_indicator_says_when_a_lookup_is_being_retried(page: Page, patient_server):
    log_in(page, patient_server.url)
    box = page.get_by_role("searchbox", name="Visitor ID")
    box.fill("fail-flaky-3")
    box.press("Enter")
    indicator = page.get_by_role("status").filter(has_text="Asking PostMetric")
    expect(indicator).to_be_visible()
    expect(indicator).to_contain_text(re.compile(r"HTTP 503\)?\. Retrying \(attempt [2-4]\)"), timeout=6000)
    expect(page.get_by_text(re.compile(r"PostMetric answered after 4 attempts"))).to_be_visible(timeout=10000)
    expect(indicator).to_be_hidden()
