"""Browser tests: Debian's Chromium where it is installed, Playwright's own elsewhere."""
from __future__ import annotations

from pathlib import Path

import pytest
from playwright.sync_api import Page, expect

from tests.conftest import AGENT_EMAIL, AGENT_PASSWORD

DEBIAN_CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_FLAGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-dev-shm-usage",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]
ARTIFACTS = Path(__file__).resolve().parents[2] / "test-artifacts"


def pytest_collection_modifyitems(items):
    for item in items:
        if "tests/e2e/" in str(item.fspath).replace("\\", "/"):
            item.add_marker(pytest.mark.e2e)


@pytest.fixture(scope="session")
def browser_type_launch_args(browser_type_launch_args):
    args = {**browser_type_launch_args, "args": CHROMIUM_FLAGS}
    if DEBIAN_CHROMIUM.exists():
        args["executable_path"] = str(DEBIAN_CHROMIUM)
    return args


@pytest.fixture
def artifacts() -> Path:
    ARTIFACTS.mkdir(exist_ok=True)
    return ARTIFACTS


def log_in(page: Page, base_url: str, *, path: str = "/") -> None:
    """Open ``path``; when the login form comes, fill it in."""
    page.goto(base_url + path)
    expect(page.get_by_role("heading", name="Log in")).to_be_visible()
    page.get_by_label("E-mail").fill(AGENT_EMAIL)
    page.get_by_label("Password").fill(AGENT_PASSWORD)
    page.get_by_role("button", name="Log in").click()
    expect(page.get_by_role("heading", name="Log in")).to_have_count(0)
    # Landing on a visitor view that paints first: wait until it has filled in.
    expect(page.locator("#visitor-loading")).to_have_count(0, timeout=10000)


def open_view(page: Page, url: str) -> None:
    """Open a visitor view and wait until it is filled in: a view whose data PostMetric
    must send paints its frame first and fills in from its own htmx request."""
    page.goto(url)
    expect(page.locator("#visitor-loading")).to_have_count(0, timeout=10000)


def session_links(page: Page):
    """The links that narrow the view to one session (not "All sessions")."""
    return page.get_by_role("region", name="Sessions").get_by_role("link").filter(has_not_text="All sessions")
