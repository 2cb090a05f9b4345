"""Starting a team's instances: real `dashboard serve` and `dashboard migrate` processes on
one PostgreSQL (and one Redis), started by the tests on free loopback ports."""
from __future__ import annotations

import socket
import uuid
from pathlib import Path

import psycopg
import pytest
from sqlalchemy.engine import make_url

from dashboard.demo import FakeApiServer
from tests.support.serving import (
    NO_DRAIN,
    create_agent,
    dashboard_command,
    dashboard_env,
    logged_in_session,
    serving_output,
    start_serving,
    stop,
    wait_until_serving,
)
from tests.support.services import drop_postgres_database, fresh_postgres_database
from tests.support.sockets import closed_port

NEWEST_REVISION = sorted(path.name[:4] for path in (Path(__file__).parents[2] / "dashboard/migrations/versions").glob("0*.py"))[-1]


@pytest.fixture
def empty_database(postgres_server_url):
    """A new, empty PostgreSQL database of this test's own (dropped at its end)."""
    name = f"team_{uuid.uuid4().hex[:12]}"
    yield fresh_postgres_database(postgres_server_url, name)
    drop_postgres_database(postgres_server_url, name)


def schema_revision(database_url: str) -> str | None:
    url = make_url(database_url)
    with psycopg.connect(host=url.host, port=url.port, user=url.username, dbname=url.database) as connection:
        exists = connection.execute("SELECT to_regclass('alembic_version')").fetchone()[0]
        return connection.execute("SELECT version_num FROM alembic_version").fetchone()[0] if exists else None


def instance(tmp_path: Path, name: str, api_url: str, database_url: str, **env_extra: str) -> dict[str, str]:
    """The environment of one instance with its own instance folder."""
    folder = tmp_path / name
    folder.mkdir(parents=True, exist_ok=True)
    return dashboard_env(folder, api_url, DATABASE_URL=database_url, **env_extra)


def test_two_instances_started_at_once_on_an_empty_database_both_come_up(tmp_path, fake_api, postgres_server_url, redis_server_url):
    """Ten times in a row: both run the migrations at the same moment; one waits for the
    other's lock and finds the schema done (without the lock one of them used to exit
    with UniqueViolation or DuplicateTable)."""
    for attempt in range(10):
        name = f"together_{attempt}_{uuid.uuid4().hex[:8]}"
        database_url = fresh_postgres_database(postgres_server_url, name)
        envs = [instance(tmp_path / str(attempt), side, fake_api.url, database_url, REDIS_URL=redis_server_url) for side in "ab"]
        ports = [closed_port(), closed_port()]
        processes = [start_serving(env, port, *NO_DRAIN) for env, port in zip(envs, ports)]
        try:
            for process, env, port in zip(processes, envs, ports):
                try:
                    wait_until_serving(process, f"http://127.0.0.1:{port}")
                except AssertionError:
                    raise AssertionError(f"attempt {attempt + 1}: {serving_output(env, port)}") from None
            assert schema_revision(database_url) == NEWEST_REVISION
        finally:
            stop(*processes)
            drop_postgres_database(postgres_server_url, name)


def test_dashboard_migrate_creates_the_schema_once_and_then_has_nothing_to_do(tmp_path, fake_api, empty_database):
    env = instance(tmp_path, "migrate", fake_api.url, empty_database)
    first = dashboard_command("migrate", env=env)
    assert first.returncode == 0, first.stderr
    assert f"from an empty database to the newest schema ({NEWEST_REVISION})" in first.stdout
    assert schema_revision(empty_database) == NEWEST_REVISION
    again = dashboard_command("migrate", env=env)
    assert again.returncode == 0 and f"is at the newest schema ({NEWEST_REVISION}); nothing to do" in again.stdout
    # The password never appears in what the command prints.
    assert "served-dashboard-secret" not in first.stdout + first.stderr


def test_dashboard_migrate_on_sqlite(tmp_path, fake_api):
    env = dashboard_env(tmp_path, fake_api.url)
    result = dashboard_command("migrate", env=env)
    assert result.returncode == 0, result.stderr
    assert (tmp_path / "served.sqlite3").exists() and f"({NEWEST_REVISION})" in result.stdout


@pytest.mark.parametrize(
    "database_url,says",
    [
        (f"postgresql://nobody@127.0.0.1:{closed_port()}/dashboard", "Check that the database server is running"),
        ("postgresql+psycopg2://nobody@127.0.0.1/dashboard", "driver that is not installed (psycopg2)"),
        ("not a url", "DATABASE_URL is not a database URL"),
    ],
)
@pytest.mark.parametrize("command", ["migrate", "serve"])
def test_a_database_that_cannot_be_used_gets_a_sentence_not_a_traceback(tmp_path, fake_api, command, database_url, says):
    env = dashboard_env(tmp_path, fake_api.url, DATABASE_URL=database_url)
    arguments = ("serve", "--port", str(closed_port())) if command == "serve" else ("migrate",)
    result = dashboard_command(*arguments, env=env)
    assert result.returncode == 1
    assert says in result.stderr and "Traceback" not in result.stderr, result.stderr


def test_instances_with_different_environments_keep_their_own_sites(tmp_path, empty_database, redis_server_url):
    """Two instances on one database, the second started with another POSTMETRIC_API_URL:
    each sends its look-ups to its own URL (the second start used to rewrite the shared
    site, and the running instance silently followed it)."""
    with FakeApiServer() as first_api, FakeApiServer() as second_api:
        first_env = instance(tmp_path, "first", first_api.url, empty_database, REDIS_URL=redis_server_url)
        second_env = instance(tmp_path, "second", second_api.url, empty_database, REDIS_URL=redis_server_url)
        create_agent(first_env)
        first_port, second_port = closed_port(), closed_port()
        first = start_serving(first_env, first_port, *NO_DRAIN)
        second = None
        try:
            wait_until_serving(first, f"http://127.0.0.1:{first_port}")
            second = start_serving(second_env, second_port, *NO_DRAIN)
            wait_until_serving(second, f"http://127.0.0.1:{second_port}")
            for port, visitor in ((first_port, "visitor_123"), (second_port, "visitor_456")):
                page = logged_in_session(f"http://127.0.0.1:{port}").get(f"http://127.0.0.1:{port}/visitors/{visitor}", timeout=10)
                assert page.status_code == 200 and visitor in page.text
        finally:
            stop(*(process for process in (first, second) if process is not None))
        assert dict(first_api.stats.calls_by_visitor) == {"visitor_123": 1}
        assert dict(second_api.stats.calls_by_visitor) == {"visitor_456": 1}


def test_a_busy_port_says_which_option_picks_another(tmp_path, fake_api):
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen(1)
        port = taken.getsockname()[1]
        result = dashboard_command("serve", "--port", str(port), env=dashboard_env(tmp_path, fake_api.url))
    assert result.returncode == 1
    assert f"Port {port} on 127.0.0.1 is already in use" in result.stderr and "--port" in result.stderr
    assert "Traceback" not in result.stderr


def test_instances_on_one_host_each_have_their_own_control_socket(tmp_path, fake_api):
    """Gunicorn's default control socket is one path per user: a second instance took
    over the first's. Each instance's is in its own instance folder."""
    envs = [instance(tmp_path, side, fake_api.url, f"sqlite:///{tmp_path / 'shared.sqlite3'}") for side in "ab"]
    ports = [closed_port(), closed_port()]
    processes = [start_serving(env, port, *NO_DRAIN) for env, port in zip(envs, ports)]
    try:
        for process, port in zip(processes, ports):
            wait_until_serving(process, f"http://127.0.0.1:{port}")
        for env, port in zip(envs, ports):
            control = Path(env["DASHBOARD_INSTANCE_PATH"]) / f"gunicorn-{port}.ctl"
            assert control.is_socket(), serving_output(env, port)
    finally:
        stop(*processes)
