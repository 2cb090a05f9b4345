"""Throwaway PostgreSQL and Redis servers on free loopback ports, started and stopped by tests.

The processes are pytest-postgresql's and pytest-redis's executors; this module only
chooses where they live. PostgreSQL refuses to run as root (CI runs as root), so there
its ``pg_ctl`` is called through ``runuser -u postgres`` on a data folder that user owns.
When a server binary is missing the tests that need it are skipped with a sentence that
says what to install (``make test`` installs both).
"""
from __future__ import annotations

import glob
import os
import shutil
import stat
import tempfile
from contextlib import contextmanager
from pathlib import Path
from typing import Any, Iterator

import pytest

from tests.support.sockets import closed_port
from tests.support.waiting import wait_until

PG_CTL_CANDIDATES = ("/usr/lib/postgresql/*/bin/pg_ctl", "/usr/local/bin/pg_ctl", "/usr/bin/pg_ctl")


def find_pg_ctl() -> str | None:
    for pattern in PG_CTL_CANDIDATES:
        found = sorted(glob.glob(pattern))
        if found:
            return found[-1]  # the newest major version
    return shutil.which("pg_ctl")


def find_redis_server() -> str | None:
    return shutil.which("redis-server") or (os.path.exists("/usr/bin/redis-server") and "/usr/bin/redis-server") or None


def _as_postgres_user(pg_ctl: str, folder: Path) -> str:
    """A pg_ctl that runs as the ``postgres`` user (root may not run PostgreSQL)."""
    if os.geteuid() != 0:
        return pg_ctl
    if shutil.which("runuser") is None:
        pytest.skip("PostgreSQL cannot run as root and runuser is missing")
    import pwd

    try:
        user = pwd.getpwnam("postgres")
    except KeyError:
        pytest.skip("PostgreSQL cannot run as root and there is no 'postgres' user (apt-get install postgresql)")
    wrapper = folder / "pg_ctl"
    wrapper.write_text(f'#!/bin/sh\ncd /\nexec runuser -u postgres -- "{pg_ctl}" "$@"\n')
    wrapper.chmod(wrapper.stat().st_mode | stat.S_IXUSR | stat.S_IXGRP | stat.S_IXOTH)
    for path in (folder, folder / "data", folder / "sockets"):
        path.mkdir(exist_ok=True)
        os.chown(path, user.pw_uid, user.pw_gid)
    folder.chmod(0o755)
    return str(wrapper)


@contextmanager
def postgres_server() -> Iterator[str]:
    """A fresh PostgreSQL cluster on a free loopback port; yields a SQLAlchemy URL to an
    empty database ``dashboard`` (user ``postgres``, trust authentication on loopback)."""
    with stoppable_postgres_server() as (url, _executor):
        yield url


@contextmanager
def stoppable_postgres_server() -> Iterator[tuple[str, Any]]:
    """Like ``postgres_server``, yielding the executor too: ``stop()`` takes the server
    down and ``start()`` brings it back on the same port with the same data."""
    pg_ctl = find_pg_ctl()
    if pg_ctl is None:
        pytest.skip("PostgreSQL is not installed (apt-get install postgresql, or run make test)")
    from pytest_postgresql.executors.proc import PostgreSQLExecutor

    folder = Path(tempfile.mkdtemp(prefix="visitor-lookup-pg-"))
    executable = _as_postgres_user(pg_ctl, folder)
    (folder / "data").mkdir(exist_ok=True)
    (folder / "sockets").mkdir(exist_ok=True)
    port = closed_port()
    executor = PostgreSQLExecutor(
        executable=executable,
        host="127.0.0.1",
        port=port,
        datadir=str(folder / "data" / "cluster"),
        unixsocketdir=str(folder / "sockets"),
        logfile=str(folder / "sockets" / "postgresql.log"),
        startparams="-w",
        dbname="dashboard",
        user="postgres",
        postgres_options="-c listen_addresses=127.0.0.1 -c fsync=off -c full_page_writes=off -c max_connections=200",
    )
    try:
        executor.start()
        # pg_ctl -w may return while the server still answers "the database system is
        # starting up"; ask until it accepts a connection.
        wait_until(lambda: accepts_connections(port), timeout=30, message="PostgreSQL did not accept connections")
        with admin_connection(port) as conn:
            conn.execute("CREATE DATABASE dashboard")
        yield f"postgresql+psycopg://postgres@127.0.0.1:{port}/dashboard", executor
    finally:
        try:
            if executor.running():  # a test may have left it stopped
                executor.stop()
        finally:
            shutil.rmtree(folder, ignore_errors=True)


def admin_connection(port: int):
    """A connection to the cluster's ``postgres`` database, for creating and dropping others."""
    import psycopg

    return psycopg.connect(host="127.0.0.1", port=port, user="postgres", dbname="postgres", autocommit=True)


def accepts_connections(port: int) -> bool:
    import psycopg

    try:
        admin_connection(port).close()
    except psycopg.OperationalError:
        return False
    return True


def fresh_postgres_database(server_url: str, name: str, *, template: str | None = None) -> str:
    """A new database on the server behind ``server_url`` (empty, or a copy of
    ``template``); returns its URL."""
    from sqlalchemy.engine import make_url

    url = make_url(server_url)
    with admin_connection(url.port) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        conn.execute(f'CREATE DATABASE "{name}"' + (f' TEMPLATE "{template}"' if template else ""))
    return url.set(database=name).render_as_string(hide_password=False)


def drop_postgres_database(server_url: str, name: str) -> None:
    from sqlalchemy.engine import make_url

    with admin_connection(make_url(server_url).port) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


@contextmanager
def redis_server() -> Iterator[str]:
    """A fresh Redis on a free loopback port, persistence off; yields its URL."""
    with stoppable_redis_server() as (url, _executor):
        yield url


@contextmanager
def stoppable_redis_server() -> Iterator[tuple[str, Any]]:
    """Like ``redis_server``, yielding the executor too (``stop()``, then ``start()`` on
    the same port)."""
    executable = find_redis_server()
    if executable is None:
        pytest.skip("Redis is not installed (apt-get install redis-server, or run make test)")
    from pytest_redis.executor import RedisExecutor

    folder = Path(tempfile.mkdtemp(prefix="visitor-lookup-redis-"))
    port = closed_port()
    executor = RedisExecutor(
        executable=executable,
        databases=16,
        redis_timeout=30,
        loglevel="warning",
        host="127.0.0.1",
        port=port,
        datadir=folder,
    )
    try:
        executor.start()
        yield f"redis://127.0.0.1:{port}/0", executor
    finally:
        try:
            if executor.running():  # a test may have left it stopped
                executor.stop()
        finally:
            shutil.rmtree(folder, ignore_errors=True)
