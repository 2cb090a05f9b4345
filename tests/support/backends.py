"""Which database and shared store a test's app uses: SQLite and in-process state (the
embedded default), or PostgreSQL and Redis (a team's deployment).

The integration suite runs every test that builds an app both ways (tests/integration/
conftest.py parametrises the ``backend`` fixture). ``make_settings`` asks :func:`current`
for its defaults, so tests that build their own settings follow the parameter too. On
PostgreSQL each instance folder (a test's ``tmp_path``, or a folder beside it for a
second database) gets its own database, copied from one migrated at the start of the
run. At the test's end its tables are emptied (identities restarted) and the database
goes back to a pool for the next test: emptying takes milliseconds, where copying a
database takes a third of a second.
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

        folder = str(Path(instance_path).resolve())
        if folder not in self.databases:
            if _pool:
                self.databases[folder] = _pool.pop()
            else:
                name = "t_" + hashlib.sha1(folder.encode()).hexdigest()[:20]
                self.databases[folder] = fresh_postgres_database(self.postgres_server_url, name, template=TEMPLATE_DATABASE)
        return self.databases[folder]


_current = Backend(SQLITE)
_pool: list[str] = []  # URLs of migrated, empty databases that no test uses


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
    """Empty the test's databases (back to the pool) and Redis, so that the next test
    starts clean."""
    for url in backend.databases.values():
        if emptied(url):
            _pool.append(url)
        else:
            from sqlalchemy.engine import make_url

            from tests.support.services import drop_postgres_database

            drop_postgres_database(backend.postgres_server_url, make_url(url).database)
    backend.databases.clear()
    if backend.redis_url:
        import redis

        with redis.Redis.from_url(backend.redis_url) as store:
            store.flushdb()


def emptied(url: str) -> bool:
    """TRUNCATE every table but Alembic's, restarting identities; False when a connection
    the test left open holds a lock (the database is then dropped instead)."""
    import psycopg
    from sqlalchemy.engine import make_url

    address = make_url(url)
    with psycopg.connect(host=address.host, port=address.port, user=address.username, dbname=address.database) as connection:
        tables = [row[0] for row in connection.execute("SELECT tablename FROM pg_tables WHERE schemaname = 'public' AND tablename <> 'alembic_version'")]
        try:
            connection.execute("SET lock_timeout = '2s'")
            connection.execute("TRUNCATE " + ", ".join(f'"{table}"' for table in tables) + " RESTART IDENTITY CASCADE")
        except psycopg.errors.LockNotAvailable:
            return False
    return True
