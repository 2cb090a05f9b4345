"""Locust users for ``team_load``: support agents looking visitors up on two instances.

Each simulated agent logs in as one of the benchmark's agents on one of the instances
(``TEAM_HOSTS``, comma-separated), then looks visitors up: mostly the team's current
customers (a few dozen IDs that several agents open), sometimes one nobody else asks for.

What counts: a log-in succeeds when it lands on a page of the signed-in dashboard (a
failed one is tried again, as an agent would, up to ``LOGIN_ATTEMPTS`` times). A look-up
is a request the dashboard answered with the visitor view (200, or 429 with the shared
budget's sentence); a request that comes back as the log-in page is a failure, never a
look-up, because the dashboard audits only what it showed to an agent who is signed in.
"""
from __future__ import annotations

import itertools
import os
import random
import re

from locust import HttpUser, between, task
from locust.exception import StopUser

HOSTS = os.environ.get("TEAM_HOSTS", "").split(",")
PASSWORD = os.environ.get("TEAM_PASSWORD", "")
AGENTS = int(os.environ.get("TEAM_AGENTS", "100"))
SHARED_VISITORS = int(os.environ.get("TEAM_SHARED_VISITORS", "40"))
LOGIN_ATTEMPTS = 3
LOOKUP = "/visitors/[id]"
_numbers = itertools.count()
_TOKEN = re.compile(r'name="csrf_token"[^>]*value="([^"]+)"')


class SupportAgent(HttpUser):
    wait_time = between(2, 6)

    def on_start(self) -> None:
        number = next(_numbers)
        self.client.base_url = HOSTS[number % len(HOSTS)]
        self.number = number
        for _attempt in range(LOGIN_ATTEMPTS):
            if self._log_in():
                return
        raise StopUser()  # never signed in: its look-ups would all be log-in pages

    def _log_in(self) -> bool:
        """One log-in (the form, then the post); whether it signed the agent in."""
        with self.client.get("/login", name="/login", catch_response=True) as page:
            if page.status_code == 0:
                return False  # the connection failed: Locust records its error as it is
            token = _TOKEN.search(page.text or "")
            if not token:
                page.failure("no log-in form")
                return False
        with self.client.post(
            "/login",
            data={"email": f"agent{self.number % AGENTS}@example.com", "password": PASSWORD, "csrf_token": token.group(1)},
            name="/login",
            catch_response=True,
        ) as response:
            if response.status_code == 0:
                return False  # the connection failed: Locust records its error as it is
            if response.status_code != 200 or response.url.rstrip("/").endswith("/login"):
                response.failure(f"not signed in (HTTP {response.status_code})")
                return False
        return True

    @task(9)
    def look_up_a_current_customer(self) -> None:
        self._look_up(f"customer-{random.randrange(SHARED_VISITORS)}")

    @task(1)
    def look_up_someone_new(self) -> None:
        self._look_up(f"agent{self.number}-ticket-{random.randrange(10**9)}")

    def _look_up(self, visitor_id: str) -> None:
        # Redirects are not followed: a look-up sent back to /login is a failure, not a
        # log-in page counted as a look-up.
        with self.client.get(f"/visitors/{visitor_id}", name=LOOKUP, catch_response=True, allow_redirects=False) as response:
            if response.status_code == 429 and "try again in" in response.text:
                response.success()  # a designed answer: the shared budget said wait
            elif response.is_redirect:
                response.failure(f"sent to {response.headers.get('Location', '?').split('?')[0]} (HTTP {response.status_code})")
