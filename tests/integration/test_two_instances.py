"""Two real `dashboard serve` instances on one PostgreSQL and one Redis, as a team runs them.

The stand-in behind them enforces PostMetric's 100 requests a minute per key and counts
every call. The tests run in order and share one minute of that budget: the last one
spends what is left of it.
"""
from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass

import pytest
import redis
import requests

from dashboard.demo import FakeApiServer
from tests.conftest import AGENT_EMAIL, AGENT_PASSWORD
from tests.support.serving import create_agent, dashboard_env, logged_in_session, served_dashboard
from tests.support.services import fresh_postgres_database

COLLEAGUES = [f"colleague{i}@example.com" for i in range(1, 6)]
HELD_BACK = "the team&#39;s limit is shared, try again in"


@dataclass
class Team:
    api: FakeApiServer
    one: str
    other: str

    def session(self, base_url: str, email: str = AGENT_EMAIL) -> requests.Session:
        session = logged_in_session(base_url, email, AGENT_PASSWORD)
        assert "/login" not in session.get(f"{base_url}/", timeout=5).url, f"{email} could not log in"
        return session


@pytest.fixture(scope="module")
def team(tmp_path_factory, postgres_server_url, redis_server_url):
    workdir = tmp_path_factory.mktemp("team")
    redis.Redis.from_url(redis_server_url).flushdb()
    database = fresh_postgres_database(postgres_server_url, "two_instances")
    with FakeApiServer(latency=0.5, rate_limit=100) as api:
        shared = {"DATABASE_URL": database, "REDIS_URL": redis_server_url}
        env = dashboard_env(workdir, api.url, **shared)
        # The schema is made once before both start (create-agent migrates).
        for email in (AGENT_EMAIL, *COLLEAGUES):
            create_agent(env, email)
        with served_dashboard(workdir, api.url, agent=False, **shared) as one, served_dashboard(
            workdir, api.url, agent=False, **shared
        ) as other:
            yield Team(api, one, other)


def test_a_visitor_fetched_through_one_is_a_hit_on_the_other(team):
    first = team.session(team.one).get(f"{team.one}/visitors/visitor_123", timeout=10)
    second = team.session(team.other).get(f"{team.other}/visitors/visitor_123", timeout=10)
    assert first.status_code == second.status_code == 200
    assert "visitor_123" in second.text
    assert team.api.stats.calls_by_visitor["visitor_123"] == 1


def test_twenty_concurrent_cold_lookups_over_both_make_one_call(team):
    sessions = [team.session(team.one), team.session(team.other)]

    def look(index: int) -> int:
        base = (team.one, team.other)[index % 2]
        return sessions[index % 2].get(f"{base}/visitors/visitor_large", timeout=20).status_code

    with ThreadPoolExecutor(20) as pool:
        statuses = list(pool.map(look, range(20)))
    assert statuses == [200] * 20
    assert team.api.stats.calls_by_visitor["visitor_large"] == 1


def test_one_agents_burst_leaves_another_agent_able_to_look_up(team):
    bursting, colleague = team.session(team.one, COLLEAGUES[0]), team.session(team.other, COLLEAGUES[1])
    assert colleague.get(f"{team.other}/visitors/colleague-first", timeout=10).status_code == 200

    def look(index: int) -> requests.Response:
        return bursting.get(f"{team.one}/visitors/burst-{index}", timeout=20)

    with ThreadPoolExecutor(10) as pool:
        burst = list(pool.map(look, range(50)))
    held = [response for response in burst if response.status_code == 429]
    assert len(held) == 50 - 34 and all(HELD_BACK in response.text for response in held)
    assert all("You have made 34 look-ups this minute" in response.text for response in held)
    # In place too: an htmx request gets the same sentence as its fragment.
    fragment = bursting.get(f"{team.one}/visitors/burst-more", headers={"HX-Request": "true", "HX-Target": "main"}, timeout=10)
    assert fragment.status_code == 429 and HELD_BACK in fragment.text and "<html" not in fragment.text
    # The colleague goes on looking up, through either instance, and cached views stay instant.
    assert colleague.get(f"{team.one}/visitors/colleague-second", timeout=10).status_code == 200
    assert bursting.get(f"{team.other}/visitors/visitor_123", timeout=10).status_code == 200
    assert team.api.stats.rate_limited == 0


def test_300_distinct_lookups_over_both_stay_within_the_budget(team):
    calls_before = team.api.stats.calls
    sessions = [(team.session(base, email), base) for email in COLLEAGUES[2:] + [AGENT_EMAIL] for base in (team.one, team.other)]

    def look(index: int) -> int:
        session, base = sessions[index % len(sessions)]
        return session.get(f"{base}/visitors/distinct-{index}", timeout=20).status_code

    with ThreadPoolExecutor(20) as pool:
        statuses = list(pool.map(look, range(300)))
    made = team.api.stats.calls - calls_before
    assert team.api.stats.rate_limited == 0, "PostMetric had to refuse requests"
    assert made <= 100 and statuses.count(200) == made
    # The rest were told why (the team's budget, or their own share), never an error page.
    assert set(statuses) <= {200, 429} and made >= min(100 - calls_before, 60)
