"""The migrations: they agree with the models, and a maintainer can run `alembic`."""
from __future__ import annotations

import os
import sqlite3
import subprocess
import sys
from pathlib import Path

import pytest
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy import Column, MetaData, String, inspect

from dashboard.db import MIGRATION_OPTIONS, make_engine, migrate
from dashboard.models import Base

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture
def migrated_engine(tmp_path):
    """A fresh SQLite database upgraded to head the way the app does it."""
    engine = make_engine(f"sqlite:///{tmp_path / 'fresh.sqlite3'}")
    migrate(engine)
    yield engine
    engine.dispose()


def differences(engine, metadata: MetaData) -> list:
    """What `alembic revision --autogenerate` would write to turn the database into ``metadata``."""
    with engine.connect() as connection:
        return compare_metadata(MigrationContext.configure(connection, opts=MIGRATION_OPTIONS), metadata)


def test_the_migrations_build_exactly_what_the_models_declare(migrated_engine):
    assert differences(migrated_engine, Base.metadata) == []
    assert set(inspect(migrated_engine).get_table_names()) == set(Base.metadata.tables) | {"alembic_version"}


def _extra_column(metadata: MetaData) -> None:
    metadata.tables["agents"].append_column(Column("nickname", String(50)))


def _other_server_default(metadata: MetaData) -> None:
    metadata.tables["lookup_events"].c.action.server_default = None


def _longer_string(metadata: MetaData) -> None:
    metadata.tables["sites"].c.slug.type = String(128)


@pytest.mark.parametrize("change", [_extra_column, _other_server_default, _longer_string])
def test_the_comparison_notices_a_model_the_migrations_do_not_build(migrated_engine, change):
    """The check above can fail: a column, a server default or a type that only the
    models have is reported."""
    metadata = MetaData()
    for table in Base.metadata.sorted_tables:
        table.to_metadata(metadata)
    change(metadata)
    assert differences(migrated_engine, metadata) != []


def alembic(*arguments: str, env: dict[str, str]) -> subprocess.CompletedProcess:
    """The `alembic` command, run from the project root as a maintainer would."""
    return subprocess.run(
        [sys.executable, "-m", "alembic", *arguments], cwd=ROOT, env=env, capture_output=True, text=True, timeout=120
    )


def command_env(tmp_path: Path, **variables: str) -> dict[str, str]:
    keep = {name: value for name, value in os.environ.items() if not name.startswith(("SECRET_KEY", "DATABASE_URL", "DASHBOARD_"))}
    return {**keep, "DASHBOARD_ENV_FILE": str(tmp_path / "none.env"), **variables}


def test_alembic_upgrades_and_checks_a_database_named_on_the_command_line(tmp_path):
    database = tmp_path / "new" / "cli.sqlite3"
    url = ["-x", f"url=sqlite:///{database}"]
    upgrade = alembic(*url, "upgrade", "head", env=command_env(tmp_path))
    assert upgrade.returncode == 0, upgrade.stderr
    assert "Running upgrade 0002 -> 0003" in upgrade.stderr
    check = alembic(*url, "check", env=command_env(tmp_path))
    assert check.returncode == 0, check.stderr
    assert "No new upgrade operations detected" in check.stdout
    engine = make_engine(f"sqlite:///{database}")
    try:
        assert differences(engine, Base.metadata) == []
    finally:
        engine.dispose()


def test_alembic_takes_the_apps_database_url_from_its_settings(tmp_path):
    database = tmp_path / "settings.sqlite3"
    env = command_env(tmp_path, SECRET_KEY="x" * 32, DATABASE_URL=f"sqlite:///{database}")
    upgrade = alembic("upgrade", "head", env=env)
    assert upgrade.returncode == 0, upgrade.stderr
    current = alembic("current", env=env)
    assert current.returncode == 0 and "(head)" in current.stdout, current.stderr
    assert database.exists()


def test_alembic_check_fails_when_the_database_and_the_models_differ(tmp_path):
    """`alembic check` runs autogenerate's comparison through env.py: a table that no
    model declares is an upgrade operation it reports, and so a failure."""
    database = tmp_path / "drifted.sqlite3"
    env = command_env(tmp_path, DATABASE_URL=f"sqlite:///{database}")
    assert alembic("-x", "mode=demo", "upgrade", "head", env=env).returncode == 0
    with sqlite3.connect(database) as connection:
        connection.execute("CREATE TABLE stray_notes (id INTEGER PRIMARY KEY)")
    connection.close()
    check = alembic("-x", "mode=demo", "check", env=env)
    assert check.returncode != 0
    assert "stray_notes" in check.stderr


def test_alembic_says_what_to_set_when_the_settings_are_incomplete(tmp_path):
    result = alembic("current", env=command_env(tmp_path))
    assert result.returncode != 0
    assert "SECRET_KEY is not set" in result.stderr and "-x url=" in result.stderr
    assert "Traceback" not in result.stderr


def test_every_migration_file_is_package_data():
    """An installed (non-editable) package migrates too: pyproject's package-data
    patterns cover every file of dashboard/migrations."""
    import tomllib

    patterns = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["setuptools"]["package-data"]["dashboard"]
    package = ROOT / "dashboard"
    covered = {path for pattern in patterns for path in package.glob(pattern)}
    files = {path for path in (package / "migrations").rglob("*") if path.is_file() and "__pycache__" not in path.parts}
    assert files and files <= covered, sorted(str(path.relative_to(package)) for path in files - covered)
