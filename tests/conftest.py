"""Fixtures shared by every layer: the PostMetric stand-in, an app, a logged-in client."""
from __future__ import annotations

from pathlib import Path

import pytest
from werkzeug.security import generate_password_hash

from dashboard import create_app
from dashboard.cli import LOOPBACK_HOSTS
from dashboard.config import Settings
from dashboard.demo import DEMO_API_KEY, FakeApiServer
from dashboard.extensions import db
from dashboard.models import Agent
from tests.support import backends
from tests.support.html import soup

AGENT_EMAIL = "agent@example.com"
AGENT_PASSWORD = "correct horse battery"


def pytest_configure(config):
    config.addinivalue_line(
        "markers",
        "sqlite_only(reason): an integration test that cannot run on PostgreSQL and Redis (say why); it runs on SQLite only",
    )


@pytest.fixture(scope="session")
def postgres_template(postgres_server_url):
    """The server, with a migrated database that tests' databases are copied from."""
    backends.make_template_database(postgres_server_url)
    return postgres_server_url


@pytest.fixture
def backend(request):
    """The database and shared store of the test's apps: SQLite and in-process state
    unless tests/integration/conftest.py asks for "postgres+redis" too."""
    name = getattr(request, "param", backends.SQLITE)
    if name == backends.POSTGRES_REDIS:
        chosen = backends.Backend(name, request.getfixturevalue("postgres_template"), request.getfixturevalue("redis_server_url"))
        import redis

        # Empty at the start too: tests that use the session's Redis directly (shared state,
        # login limits) leave their keys behind, and a cached visitor or a spent budget
        # must not carry over into this test.
        with redis.Redis.from_url(chosen.redis_url) as store:
            store.flushdb()
    else:
        chosen = backends.Backend(name)
    backends.use(chosen)
    try:
        yield chosen
    finally:
        backends.use(backends.Backend(backends.SQLITE))
        backends.finish(chosen)


@pytest.fixture(scope="session")
def fake_api():
    """The bundled PostMetric stand-in on a free local port, for the whole run."""
    with FakeApiServer(slow_seconds=3.0) as server:
        yield server


@pytest.fixture(autouse=True)
def fast_password_hashing(monkeypatch):
    """Cheap password hashes in tests: nearly every test logs an agent in, and scrypt's
    ~0.1 s per hash (right for production) would dominate the suite's run time. Commands
    run as subprocesses (create-agent, serve, demo) still hash for real."""
    import dashboard.models

    monkeypatch.setattr(
        dashboard.models, "generate_password_hash", lambda password: generate_password_hash(password, "pbkdf2:sha256:1000")
    )


@pytest.fixture(autouse=True)
def _reset_fake_api_stats(request):
    if "fake_api" in request.fixturenames:
        request.getfixturevalue("fake_api").stats.reset()


def make_settings(tmp_path: Path, api_url: str | None, api_key: str | None = DEMO_API_KEY, **changes) -> Settings:
    """Test settings for an instance in ``tmp_path``, on the test's backend (SQLite, or
    PostgreSQL and Redis: see tests/support/backends.py) unless ``changes`` name others."""
    backend = backends.current()
    return Settings(
        secret_key="test-secret-key-0123456789",
        database_url=backend.database_url(tmp_path) or f"sqlite:///{tmp_path / 'test.sqlite3'}",
        redis_url=backend.redis_url,
        mode="test",
        postmetric_api_url=api_url,
        postmetric_api_key=api_key if api_url else None,
        instance_path=tmp_path,
        upstream_connect_timeout=1.0,
        upstream_read_timeout=1.0,
        upstream_deadline=1.0,
        # Tests serve PostMetric stand-ins on loopback (sites other than the environment's too).
        postmetric_allowed_hosts=LOOPBACK_HOSTS,
    ).with_changes(**changes)


@pytest.fixture
def settings(tmp_path, fake_api, backend) -> Settings:
    return make_settings(tmp_path, fake_api.url)


@pytest.fixture
def app(settings):
    app = create_app(settings)
    yield app
    app.extensions["db_engine"].dispose()


@pytest.fixture
def client(app):
    return app.test_client()


def add_agent(app, email: str = AGENT_EMAIL, password: str = AGENT_PASSWORD, *, admin: bool = False) -> int:
    with app.app_context():
        agent = Agent(email=Agent.normalise_email(email), is_admin=admin, active=True)
        agent.set_password(password)
        db.session.add(agent)
        db.session.commit()
        return agent.id


def csrf_token_from(html: str) -> str:
    """The value of the page's first CSRF form field."""
    field = soup(html).select_one('input[name="csrf_token"]')
    assert field is not None and field.get("value"), "no CSRF token in the page"
    return field["value"]


class AuthActions:
    def __init__(self, app, client):
        self.app = app
        self.client = client

    def login(self, email: str = AGENT_EMAIL, password: str = AGENT_PASSWORD, next: str = "", **extra):
        page = self.client.get("/login")
        token = csrf_token_from(page.text)
        data = {"email": email, "password": password, "csrf_token": token, "next": next, **extra}
        return self.client.post("/login", data=data)

    def logout(self):
        page = self.client.get("/")
        token = csrf_token_from(page.text)
        return self.client.post("/logout", data={"csrf_token": token})


@pytest.fixture
def auth(app, client) -> AuthActions:
    add_agent(app)
    return AuthActions(app, client)


@pytest.fixture
def logged_in(auth):
    response = auth.login()
    assert response.status_code == 302
    return auth.client


class LiveServer:
    """A Flask app served on 127.0.0.1 (a free port) in a thread, stopped by the test."""

    def __init__(self, app):
        from werkzeug.serving import make_server

        self.app = app
        self._server = make_server("127.0.0.1", 0, app, threaded=True)
        self.url = f"http://127.0.0.1:{self._server.server_port}"
        import threading

        self._thread = threading.Thread(target=self._server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)

    def __enter__(self) -> "LiveServer":
        self._thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self._server.shutdown()
        self._server.server_close()
        self._thread.join(timeout=5)


@pytest.fixture
def live_server(app):
    add_agent(app)
    with LiveServer(app) as server:
        yield server


@pytest.fixture(scope="session")
def postgres_server_url():
    """A throwaway PostgreSQL server for the whole run (started only when a test asks)."""
    from tests.support.services import postgres_server

    with postgres_server() as url:
        yield url


@pytest.fixture(scope="session")
def redis_server_url():
    """A throwaway Redis server for the whole run (started only when a test asks)."""
    from tests.support.services import redis_server

    with redis_server() as url:
        yield url
