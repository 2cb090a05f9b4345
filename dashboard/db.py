"""The database: one engine per app, one session per app context, Alembic migrations
run once under a lock (several instances may start at the same moment)."""
from __future__ import annotations

import fcntl
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from alembic import command
from alembic.config import Config
from flask import Flask, current_app, g
from sqlalchemy import Connection, Engine, create_engine, event, text
from sqlalchemy.exc import ArgumentError, NoSuchModuleError, OperationalError
from sqlalchemy.orm import Session, sessionmaker

MIGRATIONS = Path(__file__).resolve().parent / "migrations"
# How Alembic migrates and compares, for the app, the `alembic` command and the tests
# alike: batch mode, so that SQLite can alter a table; server defaults compared as well
# as types, so a model declares the DEFAULT its migration gives a column.
MIGRATION_OPTIONS = {"render_as_batch": True, "compare_server_default": True}
# The PostgreSQL advisory lock that migrations hold: any fixed number, the same in every
# instance ("VLMIGRAT" in ASCII, so that it is recognisable in pg_locks).
MIGRATION_LOCK_KEY = 0x564C4D4947524154


class DatabaseUnavailable(Exception):
    """The database cannot be used; the message says why and what to do, for a person."""


def driver_url(url: str) -> str:
    """``url`` with PostgreSQL's driver named: the installed psycopg 3, not SQLAlchemy's
    default psycopg2, for plain ``postgresql://`` and Heroku-style ``postgres://`` URLs."""
    for prefix in ("postgresql://", "postgres://"):
        if url.startswith(prefix):
            return "postgresql+psycopg://" + url.removeprefix(prefix)
    return url


def make_engine(url: str, *, pool_size: int = 5, max_overflow: int = 10) -> Engine:
    """An engine for ``url``; a server database keeps ``pool_size`` connections open and
    opens up to ``max_overflow`` more while every pooled one is busy. A URL that cannot be
    read or whose driver is missing raises :class:`DatabaseUnavailable` with a sentence
    that says what to do."""
    url = driver_url(url)
    try:
        return _make_engine(url, pool_size=pool_size, max_overflow=max_overflow)
    except (ArgumentError, ValueError) as error:
        raise DatabaseUnavailable(
            f"DATABASE_URL is not a database URL SQLAlchemy can read ({error}); write it as "
            "postgresql://USER:PASSWORD@HOST:5432/NAME or sqlite:////absolute/path/dashboard.sqlite3."
        ) from None
    except (ModuleNotFoundError, NoSuchModuleError) as error:
        driver = getattr(error, "name", None) or str(error)
        raise DatabaseUnavailable(
            f"DATABASE_URL needs a database driver that is not installed ({driver}). PostgreSQL "
            "uses psycopg 3, a dependency of this package: pip install 'psycopg[binary]', or "
            "reinstall the dashboard (pip install -e .) and write the URL as postgresql://..."
        ) from None


def _make_engine(url: str, *, pool_size: int, max_overflow: int) -> Engine:
    if url.startswith("sqlite"):
        engine = create_engine(url, connect_args={"check_same_thread": False, "timeout": 30})

        @event.listens_for(engine, "connect")
        def _sqlite_pragmas(dbapi_connection, _record):  # pragma: no cover - trivial
            # WAL lets readers and one writer work at once; busy_timeout makes two
            # server workers writing at the same moment wait instead of failing.
            cursor = dbapi_connection.cursor()
            cursor.execute("PRAGMA journal_mode=WAL")
            # In WAL mode NORMAL stays consistent after a crash and skips an fsync per
            # commit, which keeps the audit write off the look-up's critical path.
            cursor.execute("PRAGMA synchronous=NORMAL")
            cursor.execute("PRAGMA busy_timeout=30000")
            cursor.execute("PRAGMA foreign_keys=ON")
            cursor.close()

        return engine
    return create_engine(url, pool_pre_ping=True, pool_size=pool_size, max_overflow=max_overflow)


def make_sqlite_folder(engine: Engine) -> None:
    """Create the folder of a SQLite database file, which SQLite will not do itself."""
    if engine.url.get_backend_name() == "sqlite" and engine.url.database not in (None, "", ":memory:"):
        Path(engine.url.database).parent.mkdir(parents=True, exist_ok=True)


def where(engine: Engine) -> str:
    """The database, named for a person without its password."""
    return engine.url.render_as_string(hide_password=True)


def schema_revision(engine: Engine) -> str | None:
    """The database's migration revision (None: not migrated yet); unreachable raises
    :class:`DatabaseUnavailable`."""
    from alembic.migration import MigrationContext

    with _sentence_for_operational_errors(engine), engine.connect() as connection:
        return MigrationContext.configure(connection).get_current_revision()


def migrate(engine: Engine) -> None:
    """Create or upgrade the schema to the newest revision, once, under a lock.

    Every instance does this at start (and `dashboard migrate` as a step of its own). The
    first to take the lock migrates; the others wait for it, then find the schema at the
    newest revision and do nothing. A database that cannot be reached raises
    :class:`DatabaseUnavailable` with a sentence.
    """
    make_sqlite_folder(engine)
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS))
    with _sentence_for_operational_errors(engine), locked_for_migration(engine) as connection:
        config.attributes["connection"] = connection
        command.upgrade(config, "head")


@contextmanager
def _sentence_for_operational_errors(engine: Engine) -> Iterator[None]:
    try:
        yield
    except OperationalError as error:
        reason = (str(error.orig or error).strip().splitlines() or ["no reason given"])[0]
        raise DatabaseUnavailable(
            f"Could not use the database at {where(engine)}: {reason}. Check that the database "
            "server is running and that DATABASE_URL names it (host, port, user, password, name)."
        ) from None


@contextmanager
def locked_for_migration(engine: Engine) -> Iterator[Connection]:
    """A connection in a transaction that holds the migration lock (for the app and the
    ``alembic`` command alike).

    PostgreSQL: an advisory lock on a fixed key, taken at the transaction's start and held
    by the transaction itself, so the commit or rollback that ends the migration releases
    it, even when the migration fails, and a pooled connection never keeps it. SQLite: an
    exclusive lock on a file beside the database.
    """
    with _sqlite_file_lock(engine), engine.begin() as connection:
        if engine.url.get_backend_name() == "postgresql":
            connection.execute(text("SELECT pg_advisory_xact_lock(:key)"), {"key": MIGRATION_LOCK_KEY})
        yield connection


@contextmanager
def _sqlite_file_lock(engine: Engine) -> Iterator[None]:
    """An exclusive lock on ``<database>.migrate-lock`` while a SQLite database migrates
    (nothing for other databases or an in-memory one)."""
    database = engine.url.database if engine.url.get_backend_name() == "sqlite" else None
    if database in (None, "", ":memory:"):
        yield
        return
    with open(f"{database}.migrate-lock", "a") as lock_file:
        fcntl.flock(lock_file, fcntl.LOCK_EX)  # released when the file is closed, or the process ends
        try:
            yield
        finally:
            fcntl.flock(lock_file, fcntl.LOCK_UN)


class Database:
    """Flask glue: ``db.session`` is a SQLAlchemy session for the current app context."""

    def init_app(self, app: Flask, url: str, *, pool_size: int = 5, max_overflow: int = 10) -> None:
        engine = make_engine(url, pool_size=pool_size, max_overflow=max_overflow)
        app.extensions["db_engine"] = engine
        app.extensions["db_sessionmaker"] = sessionmaker(engine, expire_on_commit=False)
        app.teardown_appcontext(self._close)

    @property
    def engine(self) -> Engine:
        return current_app.extensions["db_engine"]

    @property
    def session(self) -> Session:
        if "db_session" not in g:
            g.db_session = current_app.extensions["db_sessionmaker"]()
        return g.db_session

    @staticmethod
    def _close(_exc: BaseException | None) -> None:
        session = g.pop("db_session", None)
        if session is not None:
            session.close()
