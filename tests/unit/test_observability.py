"""The operator's side, without a server: request IDs, the JSON line, failures logged
once per interval, the login limits' fallback, and the README's systemd unit."""
from __future__ import annotations

import configparser
import json
import logging
import re
import shlex
import shutil
import subprocess
from pathlib import Path

import pytest
from limits import parse
from limits.storage import MemoryStorage
from limits.strategies import MovingWindowRateLimiter
from redis.exceptions import ConnectionError as RedisConnectionError

from dashboard.cli import main
from dashboard.config import PROJECT_ROOT
from dashboard.extensions import RECHECK_SECONDS, SharedOrLocal
from dashboard.requestlog import FailureLog, JsonFormatter, TextFormatter, request_id_from


@pytest.mark.parametrize(
    "header, trusted, kept",
    [
        ("edge-7f3a9c2e-0001", True, True),
        ("edge-7f3a9c2e-0001", False, False),
        (None, True, False),
        ("x" * 129, True, False),
        ("has space-0001", True, False),
        ('quote"0001abcd', True, False),
    ],
)
def test_a_request_id_is_kept_only_from_a_trusted_proxy_and_when_well_formed(header, trusted, kept):
    made = request_id_from(header, trusted=trusted)
    assert (made == header) is kept
    if not kept:
        assert re.fullmatch(r"[0-9a-f]{32}", made)


def record(message: str = "GET /x 200", **fields) -> logging.LogRecord:
    entry = logging.LogRecord("dashboard.requests", logging.INFO, __file__, 1, message, (), None)
    entry.request_id = "abc123def456"
    entry.fields = fields
    return entry


def test_the_json_line_is_one_object_on_one_line():
    line = JsonFormatter().format(record("a\nmultiline message", route="/visitors/<visitor_id>", status=200))
    assert "\n" not in line
    entry = json.loads(line)
    assert entry["request_id"] == "abc123def456" and entry["route"] == "/visitors/<visitor_id>" and entry["status"] == 200
    assert entry["level"] == "INFO" and entry["logger"] == "dashboard.requests" and entry["message"] == "a\nmultiline message"


def test_the_text_line_is_for_people():
    line = TextFormatter().format(record(status=200, duration_ms=12.5))
    assert "INFO dashboard.requests: GET /x 200 status=200 duration_ms=12.5" in line


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def test_a_failure_is_logged_once_per_kind_per_interval_with_how_many_more(caplog):
    clock = Clock()
    failures = FailureLog(logging.getLogger("test.failures"), interval=60, clock=clock)
    with caplog.at_level(logging.ERROR, logger="test.failures"):
        assert failures.report("database not answering", "refused")
        assert not failures.report("database not answering", "refused")
        assert not failures.report("database not answering", "refused")
        assert failures.report("audit write failed", "read-only")  # another kind: its own line
        clock.now += 61
        assert failures.report("database not answering", "refused")
    messages = [r.getMessage() for r in caplog.records]
    assert messages == [
        "database not answering: refused",
        "audit write failed: read-only",
        "database not answering: refused (2 more like it in the last 60 s)",
    ]


class DownStorage(MemoryStorage):
    """A shared storage that can be switched off, as Redis is when it stops."""

    def __init__(self) -> None:
        super().__init__()
        self.down = False

    def incr(self, *args, **kwargs):
        if self.down:
            raise RedisConnectionError("Connection refused")
        return super().incr(*args, **kwargs)

    def acquire_entry(self, *args, **kwargs):
        if self.down:
            raise RedisConnectionError("Connection refused")
        return super().acquire_entry(*args, **kwargs)

    def check(self) -> bool:
        if self.down:
            raise RedisConnectionError("Connection refused")
        return True


def test_login_limits_fall_back_to_memory_and_return_to_the_shared_store(caplog):
    shared = DownStorage()
    clock = Clock()
    strategy = SharedOrLocal(MovingWindowRateLimiter(shared), "moving-window", clock=clock)
    limit = parse("2 per minute")
    assert strategy.hit(limit, "login", "a") and not strategy.using_fallback
    shared.down = True
    with caplog.at_level(logging.WARNING, logger="dashboard.limits"):
        assert strategy.hit(limit, "login", "a")  # counted in memory, not refused
        assert strategy.hit(limit, "login", "a")
        assert not strategy.hit(limit, "login", "a")  # the limit still holds in this process
    assert strategy.using_fallback
    assert len([r for r in caplog.records if "not answering" in r.getMessage()]) == 1
    shared.down = False
    assert not strategy.hit(limit, "login", "a") and strategy.using_fallback  # rechecked only every few seconds
    clock.now += RECHECK_SECONDS + 1
    assert strategy.hit(limit, "login", "a")  # the shared store's count: 1 from before, this makes 2
    assert not strategy.using_fallback
    assert not strategy.hit(limit, "login", "a")


def readme_unit() -> str:
    readme = (PROJECT_ROOT / "README.md").read_text()
    section = readme[readme.index("## Running it for a team") :]
    return re.search(r"```ini\n(.*?)```", section, re.S).group(1)


def test_the_readme_systemd_unit_runs_dashboard_serve_with_options_that_exist():
    unit = configparser.ConfigParser(strict=False, interpolation=None)
    unit.optionxform = str
    unit.read_string(readme_unit())
    argv = shlex.split(unit["Service"]["ExecStart"])
    assert Path(argv[0]).name == "dashboard" and argv[1] == "serve"
    serve = main.commands["serve"]
    context = serve.make_context("serve", argv[2:])  # raises on an option that does not exist
    assert context.params["workers"] == 2 and context.params["drain_seconds"] == 10
    # systemd must wait longer than the drain and the graceful timeout together.
    assert int(unit["Service"]["TimeoutStopSec"]) > context.params["drain_seconds"] + context.params["graceful_timeout"]


@pytest.mark.skipif(shutil.which("systemd-analyze") is None, reason="systemd-analyze is not installed")
def test_systemd_accepts_the_readme_unit(tmp_path):
    dashboard = Path(__file__).resolve().parents[2] / ".venv" / "bin" / "dashboard"
    if not dashboard.exists():
        pytest.skip("the dashboard command is not installed in .venv")
    env_file = tmp_path / "env"
    env_file.write_text("")
    text = readme_unit().replace("/opt/visitor-lookup/.venv/bin/dashboard", str(dashboard)).replace("/etc/visitor-lookup/env", str(env_file))
    (tmp_path / "visitor-lookup.service").write_text(text)
    result = subprocess.run(["systemd-analyze", "verify", str(tmp_path / "visitor-lookup.service")], capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stderr
