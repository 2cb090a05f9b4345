"""Locust users for ``team_load``: support agents looking visitors up on two instances.

Each simulated agent logs in as one of the benchmark's agents on one of the instances
(``TEAM_HOSTS``, comma-separated), then looks visitors up: mostly the team's current
customers (a few dozen IDs that several agents open), sometimes one nobody else asks for.
"""
from __future__ import annotations

import itertools
import os
import random
import re

from locust import HttpUser, between, task

HOSTS = os.environ.get("TEAM_HOSTS", "").split(",")
PASSWORD = os.environ.get("TEAM_PASSWORD", "")
AGENTS = int(os.environ.get("TEAM_AGENTS", "100"))
SHARED_VISITORS = int(os.environ.get("TEAM_SHARED_VISITORS", "40"))
_numbers = itertools.count()
_TOKEN = re.compile(r'name="csrf_token"[^>]*value="([^"]+)"')


class SupportAgent(HttpUser):
    wait_time = between(2, 6)

    def on_start(self) -> None:
        number = next(_numbers)
        self.client.base_url = HOSTS[number % len(HOSTS)]
        self.number = number
        page = self.client.get("/login", name="/login")
        token = _TOKEN.search(page.text)
        self.client.post(
            "/login",
            data={"email": f"agent{number % AGENTS}@example.com", "password": PASSWORD, "csrf_token": token.group(1) if token else ""},
            name="/login",
        )

    @task(9)
    def look_up_a_current_customer(self) -> None:
        self._look_up(f"customer-{random.randrange(SHARED_VISITORS)}")

    @task(1)
    def look_up_someone_new(self) -> None:
        self._look_up(f"agent{self.number}-ticket-{random.randrange(10**9)}")

    def _look_up(self, visitor_id: str) -> None:
        with self.client.get(f"/visitors/{visitor_id}", name="/visitors/[id]", catch_response=True) as response:
            if response.status_code == 429 and "try again in" in response.text:
                response.success()  # a designed answer: the shared budget said wait
