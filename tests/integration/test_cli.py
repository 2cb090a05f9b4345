"""The `dashboard` command: create-agent, start-up refusal, demo."""
from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import requests
from click.testing import CliRunner
from sqlalchemy import create_engine, select
from sqlalchemy.orm import Session

from dashboard.cli import main
from dashboard.models import Agent
from tests.conftest import csrf_token_from
from tests.support.html import one, soup, text_of

ROOT = Path(__file__).resolve().parents[2]


def env_for(tmp_path, **extra):
    return {"SECRET_KEY": "x" * 32, "DATABASE_URL": f"sqlite:///{tmp_path / 'cli.sqlite3'}", "DASHBOARD_ENV_FILE": str(tmp_path / "none.env"), **extra}


def test_create_agent_reads_the_password_from_stdin_and_creates_the_schema(tmp_path):
    result = CliRunner().invoke(main, ["create-agent", "Lead@Example.com", "--admin", "--password-stdin"], input="a long enough password\n", env=env_for(tmp_path))
    assert result.exit_code == 0, result.output
    engine = create_engine(f"sqlite:///{tmp_path / 'cli.sqlite3'}")
    with Session(engine) as session:
        agent = session.scalars(select(Agent)).one()
    engine.dispose()
    assert agent.email == "lead@example.com" and agent.is_admin
    assert agent.password_hash != "a long enough password" and agent.check_password("a long enough password")


def test_create_agent_refuses_short_passwords_and_duplicates(tmp_path):
    runner = CliRunner()
    short = runner.invoke(main, ["create-agent", "a@example.com", "--password-stdin"], input="short\n", env=env_for(tmp_path))
    assert short.exit_code != 0 and "at least 12 characters" in short.output
    runner.invoke(main, ["create-agent", "a@example.com", "--password-stdin"], input="a long enough password\n", env=env_for(tmp_path))
    again = runner.invoke(main, ["create-agent", "A@example.com", "--password-stdin"], input="a long enough password\n", env=env_for(tmp_path))
    assert again.exit_code != 0 and "already exists" in again.output


def test_production_commands_refuse_to_start_without_secret_key(tmp_path):
    env = env_for(tmp_path, SECRET_KEY="")
    result = CliRunner().invoke(main, ["serve", "--port", "0"], env=env)
    assert result.exit_code != 0
    assert "SECRET_KEY is not set" in result.output
    assert "Traceback" not in result.output


def test_commands_read_the_env_file_that_dashboard_env_file_names(tmp_path):
    env_file = tmp_path / "lookup.env"
    env_file.write_text(f"SECRET_KEY={'y' * 32}\nDATABASE_URL=sqlite:///{tmp_path / 'from-file.sqlite3'}\n")
    env = env_for(tmp_path, DASHBOARD_ENV_FILE=str(env_file), SECRET_KEY=None, DATABASE_URL=None)
    result = CliRunner().invoke(main, ["create-agent", "a@example.com", "--password-stdin"], input="a long enough password\n", env=env)
    assert result.exit_code == 0, result.output
    assert (tmp_path / "from-file.sqlite3").exists() and not (tmp_path / "cli.sqlite3").exists()


def test_serve_hands_gunicorn_the_declared_settings(tmp_path, monkeypatch):
    from gunicorn.arbiter import Arbiter

    seen = []
    monkeypatch.setattr(Arbiter, "run", lambda self: seen.append((self.cfg.forwarded_allow_ips, self.cfg.timeout)))
    env_file = tmp_path / "lookup.env"
    env_file.write_text("FORWARDED_ALLOW_IPS=10.0.0.1,10.0.0.2\n")
    runner = CliRunner()
    for env in (env_for(tmp_path, FORWARDED_ALLOW_IPS=None), env_for(tmp_path, DASHBOARD_ENV_FILE=str(env_file), FORWARDED_ALLOW_IPS=None, POSTMETRIC_DEADLINE="20")):
        result = runner.invoke(main, ["serve", "--port", "0"], env=env)
        assert result.exit_code == 0, result.output
    # The timeout leaves room above a look-up's deadline and read timeout.
    assert seen == [(["127.0.0.1"], 50), (["10.0.0.1", "10.0.0.2"], 60)]


def test_serve_hands_gunicorn_its_serving_knobs(tmp_path, monkeypatch):
    from gunicorn.arbiter import Arbiter

    seen = []
    knobs = ("threads", "graceful_timeout", "keepalive", "max_requests", "max_requests_jitter", "accesslog")
    monkeypatch.setattr(Arbiter, "run", lambda self: seen.append({name: getattr(self.cfg, name) for name in knobs}))
    monkeypatch.delenv("PROMETHEUS_MULTIPROC_DIR", raising=False)
    options = ["--threads", "8", "--graceful-timeout", "12", "--keep-alive", "20", "--max-requests", "500", "--max-requests-jitter", "50"]
    result = CliRunner().invoke(main, ["serve", "--port", "0", *options], env=env_for(tmp_path))
    assert result.exit_code == 0, result.output
    assert seen == [{"threads": 8, "graceful_timeout": 12, "keepalive": 20, "max_requests": 500, "max_requests_jitter": 50, "accesslog": None}]
    # The metrics folder is the instance's own and is gone once it stops.
    assert not os.path.exists(os.environ.pop("PROMETHEUS_MULTIPROC_DIR"))


def test_demo_serves_the_dashboard_and_prints_working_credentials(tmp_path):
    env = {k: v for k, v in os.environ.items() if not k.startswith(("SECRET_KEY", "DATABASE_URL", "POSTMETRIC_"))}
    env.update(DASHBOARD_INSTANCE_PATH=str(tmp_path), DASHBOARD_ENV_FILE=str(tmp_path / "none.env"), PYTHONUNBUFFERED="1")
    process = subprocess.Popen(
        [sys.executable, "-m", "dashboard.cli", "demo", "--port", "0"],
        cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
    )
    try:
        lines = []
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline and not any("Press Ctrl-C" in line for line in lines):
            line = process.stdout.readline()
            if not line:
                break
            lines.append(line)
        output = "".join(lines)
        url = re.search(r"demo: (http://127\.0\.0\.1:\d+)", output).group(1)
        email, password = re.search(r"log in as (\S+) with password (\S+)", output).groups()
        with requests.Session() as browser:
            login = browser.get(f"{url}/login", timeout=5)
            token = csrf_token_from(login.text)
            browser.post(f"{url}/login", data={"email": email, "password": password, "csrf_token": token}, timeout=5)
            page = browser.get(f"{url}/visitors/visitor_123", timeout=10)
            assert page.status_code == 200 and text_of(one(soup(page.text), "#visitor-heading")) == "Visitor visitor_123"
            assert "42" in page.text
        assert (tmp_path / "demo.sqlite3").exists()  # the demo's own database in the instance folder
    finally:
        process.send_signal(signal.SIGINT)
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
        process.stdout.close()


def test_a_served_worker_exempts_what_it_built_at_start_from_garbage_collection():
    import gc

    from dashboard.serving import freeze_startup_objects

    assert gc.get_freeze_count() == 0
    try:
        freeze_startup_objects(worker=None)
        assert gc.get_freeze_count() > 0
    finally:
        gc.unfreeze()
