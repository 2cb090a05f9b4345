"""Which database and shared store a test's app uses: SQLite and in-process state (the
embedded default), or PostgreSQL and Redis (a team's deployment).

The integration suite runs every test that builds an app both ways (tests/integration/
conftest.py parametrises the ``backend`` fixture). ``make_settings`` asks :func:`current`
for its defaults, so tests that build their own settings follow the parameter too. On
PostgreSQL each instance folder (a test's ``tmp_path``, or a folder beside it for a
second database) gets its own database, copied from one migrated at the start of the
run, which is much faster than creating and migrating one per test.
"""
from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from pathlib import Path

SQLITE = "sqlite"
POSTGRES_REDIS = "postgres+redis"
BACKENDS = (SQLITE, POSTGRES_REDIS)
TEMPLATE_DATABASE = "dashboard_template"


@dataclass
class Backend:
    name: str
    postgres_server_url: str | None = None
    redis_url: str | None = None
    databases: dict[str, str] = field(default_factory=dict)  # name -> URL, dropped at the test's end

    def database_url(self, instance_path: Path) -> str | None:
        """The database for the instance in ``instance_path`` (None: SQLite in that folder)."""
        if self.postgres_server_url is None:
            return None
        from tests.support.services import fresh_postgres_database

        name = "t_" + hashlib.sha1(str(Path(instance_path).resolve()).encode()).hexdigest()[:20]
        if name not in self.databases:
            self.databases[name] = fresh_postgres_database(self.postgres_server_url, name, template=TEMPLATE_DATABASE)
        return self.databases[name]


_current = Backend(SQLITE)


def current() -> Backend:
    return _current


def use(backend: Backend) -> None:
    global _current
    _current = backend


def make_template_database(postgres_server_url: str) -> None:
    """The migrated, empty database that each test's database is copied from."""
    from dashboard.db import make_engine, migrate
    from tests.support.services import fresh_postgres_database

    engine = make_engine(fresh_postgres_database(postgres_server_url, TEMPLATE_DATABASE))
    try:
        migrate(engine)
    finally:
        engine.dispose()  # a template may have no connections while it is copied


def finish(backend: Backend) -> None:
    """Drop the test's databases and empty Redis, so that the next test starts clean."""
    from tests.support.services import drop_postgres_database

    for name in backend.databases:
        drop_postgres_database(backend.postgres_server_url, name)
    backend.databases.clear()
    if backend.redis_url:
        import redis

        with redis.Redis.from_url(backend.redis_url) as store:
            store.flushdb()
