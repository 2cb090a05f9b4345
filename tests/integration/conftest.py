"""The integration suite runs on both backends: every test that builds an app (through the
``app``/``settings`` fixtures or ``make_settings``) runs once on SQLite with in-process
state and once on PostgreSQL and Redis, real servers started for the run on free
loopback ports. A test marked ``sqlite_only`` (with its reason) runs on SQLite alone."""
from __future__ import annotations

import pytest

from tests.conftest import make_settings
from tests.support.backends import BACKENDS, SQLITE


def builds_an_app(metafunc) -> bool:
    return "settings" in metafunc.fixturenames or getattr(metafunc.module, "make_settings", None) is make_settings


def pytest_generate_tests(metafunc):
    if not builds_an_app(metafunc):
        return
    if "backend" not in metafunc.fixturenames:
        metafunc.fixturenames.append("backend")
    names = (SQLITE,) if metafunc.definition.get_closest_marker("sqlite_only") else BACKENDS
    metafunc.parametrize("backend", names, indirect=True)
