"""The database: one engine per app, one session per app context, Alembic migrations."""
from __future__ import annotations

from pathlib import Path

from alembic import command
from alembic.config import Config
from flask import Flask, current_app, g
from sqlalchemy import Engine, create_engine, event
from sqlalchemy.orm import Session, sessionmaker

MIGRATIONS = Path(__file__).resolve().parent / "migrations"
# How Alembic migrates and compares, for the app, the `alembic` command and the tests
# alike: batch mode, so that SQLite can alter a table; server defaults compared as well
# as types, so a model declares the DEFAULT its migration gives a column.
MIGRATION_OPTIONS = {"render_as_batch": True, "compare_server_default": True}


def make_engine(url: str, *, pool_size: int = 5, max_overflow: int = 10) -> Engine:
    """The engine for ``url``; a server database keeps ``pool_size`` connections open and
    opens up to ``max_overflow`` more while every pooled one is busy."""
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


def migrate(engine: Engine) -> None:
    """Create or upgrade the schema to the newest revision."""
    make_sqlite_folder(engine)
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS))
    with engine.begin() as connection:
        config.attributes["connection"] = connection
        command.upgrade(config, "head")


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
