"""Run `dashboard serve` (gunicorn) as a subprocess on a free loopback port."""
from __future__ import annotations

import os
import subprocess
import sys
from contextlib import contextmanager
from pathlib import Path
from typing import Iterator, Sequence

import requests

from dashboard.demo import DEMO_API_KEY
from tests.conftest import AGENT_EMAIL, AGENT_PASSWORD
from tests.support.sockets import closed_port
from tests.support.waiting import wait_until

ROOT = Path(__file__).resolve().parents[2]


def healthy(url: str) -> bool:
    """Whether the server answers its liveness probe yet (not listening or still busy starting: no)."""
    try:
        return requests.get(f"{url}/healthz", timeout=1).status_code == 200
    except (requests.ConnectionError, requests.Timeout):
        return False


def dashboard_env(workdir: Path, api_url: str, **env_extra: str) -> dict[str, str]:
    """The environment of a `dashboard` command for an instance in ``workdir`` (SQLite
    there unless ``env_extra`` names a DATABASE_URL)."""
    return {
        **os.environ,
        "SECRET_KEY": "served-dashboard-secret-0123456789",
        "DATABASE_URL": f"sqlite:///{workdir / 'served.sqlite3'}",
        "DASHBOARD_INSTANCE_PATH": str(workdir),
        "POSTMETRIC_API_URL": api_url,
        "POSTMETRIC_API_KEY": DEMO_API_KEY,
        "DASHBOARD_ENV_FILE": str(workdir / "none.env"),
        **env_extra,
    }


def dashboard_command(*arguments: str, env: dict[str, str], **options) -> subprocess.CompletedProcess:
    """Run a `dashboard` command to its end; its output is text."""
    return subprocess.run(
        [sys.executable, "-m", "dashboard.cli", *arguments], env=env, cwd=ROOT, capture_output=True, text=True, timeout=120, **options
    )


def create_agent(env: dict[str, str], email: str = AGENT_EMAIL, password: str = AGENT_PASSWORD) -> None:
    """`dashboard create-agent` (which also creates or migrates the schema)."""
    created = dashboard_command("create-agent", email, "--password-stdin", env=env, input=password + "\n")
    assert created.returncode == 0, created.stderr


# `dashboard serve`, as ``python -m`` runs it.
DASHBOARD_SERVE = ("dashboard.cli", "serve")


def start_serving(env: dict[str, str], port: int, *arguments: str, program: Sequence[str] = DASHBOARD_SERVE) -> subprocess.Popen:
    """Start `dashboard serve` (or another ``python -m`` ``program`` that takes --host and
    --port) on 127.0.0.1:``port``, its output in a file beside its database."""
    log = open(Path(env["DASHBOARD_INSTANCE_PATH"]) / f"serve-{port}.log", "w")
    with log:
        return subprocess.Popen(
            [sys.executable, "-m", *program, "--host", "127.0.0.1", "--port", str(port), *arguments],
            env=env, cwd=ROOT, stdout=log, stderr=subprocess.STDOUT,
        )


def serving_output(env: dict[str, str], port: int) -> str:
    return (Path(env["DASHBOARD_INSTANCE_PATH"]) / f"serve-{port}.log").read_text()


def wait_until_serving(process: subprocess.Popen, url: str, timeout: float = 30, name: str = "dashboard serve") -> None:
    wait_until(lambda: healthy(url) or process.poll() is not None, timeout=timeout, message=f"{name} at {url} did not start")
    assert process.poll() is None, f"{name} at {url} exited at start-up"


# `dashboard serve` drains for 5 s on SIGTERM (/readyz 503 while a balancer moves away);
# a test's instance has no balancer in front of it.
NO_DRAIN = ("--drain-seconds", "0")


def stop(*processes: subprocess.Popen) -> None:
    """Stop the processes: all are asked at once, then each is waited for."""
    for process in processes:
        process.terminate()
    for process in processes:
        try:
            process.wait(timeout=15)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


@contextmanager
def served_dashboard(
    workdir: Path,
    api_url: str,
    *,
    agent: bool = True,
    workers: int = 1,
    serve_args: Sequence[str] = NO_DRAIN,
    process_out: list | None = None,
    **env_extra: str,
) -> Iterator[str]:
    """Create the test agent (unless ``agent=False``), start `dashboard serve` (with
    ``serve_args``), yield its URL, stop it. ``process_out`` receives the process, for
    tests that signal it.

    ``env_extra`` sets more of the environment: DATABASE_URL and REDIS_URL for a
    dashboard on PostgreSQL and Redis (the SQLite file in ``workdir`` otherwise).
    """
    env = dashboard_env(workdir, api_url, **env_extra)
    if agent:
        create_agent(env)
    with serving(env, "--workers", str(workers), *serve_args, process_out=process_out) as url:
        yield url


@contextmanager
def serving(
    env: dict[str, str], *arguments: str, program: Sequence[str] = DASHBOARD_SERVE, process_out: list | None = None
) -> Iterator[str]:
    """Start ``program`` (`dashboard serve` unless told) on a free loopback port, yield its
    URL once it answers /healthz, stop it. ``process_out`` receives the process."""
    port = closed_port()
    process = start_serving(env, port, *arguments, program=program)
    if process_out is not None:
        process_out.append(process)
    url = f"http://127.0.0.1:{port}"
    try:
        name = "dashboard serve" if tuple(program) == DASHBOARD_SERVE else f"python -m {' '.join(program)}"
        wait_until_serving(process, url, timeout=20, name=name)
        yield url
    finally:
        stop(process)


def logged_in_session(base_url: str, email: str = AGENT_EMAIL, password: str = AGENT_PASSWORD) -> requests.Session:
    """A requests session logged in as the test agent (or as ``email``)."""
    from tests.conftest import csrf_token_from

    session = requests.Session()
    token = csrf_token_from(session.get(f"{base_url}/login", timeout=5).text)
    session.post(f"{base_url}/login", data={"email": email, "password": password, "csrf_token": token}, timeout=5)
    return session
