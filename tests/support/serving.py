"""Run `dashboard serve` (gunicorn) as a subprocess on a free loopback port."""
from __future__ import annotations

import os
import subprocess
import sys
from contextlib import contextmanager
from pathlib import Path
from typing import Iterator

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
    """The environment `dashboard serve` runs in for tests: its own SQLite file in ``workdir``."""
    return {
        **os.environ,
        "SECRET_KEY": "served-dashboard-secret-0123456789",
        "DATABASE_URL": f"sqlite:///{workdir / 'served.sqlite3'}",
        "POSTMETRIC_API_URL": api_url,
        "POSTMETRIC_API_KEY": DEMO_API_KEY,
        "DASHBOARD_ENV_FILE": str(workdir / "none.env"),
        **env_extra,
    }


@contextmanager
def served_dashboard(workdir: Path, api_url: str, **env_extra: str) -> Iterator[str]:
    """Create the test agent, start `dashboard serve`, yield its URL, stop it."""
    env = dashboard_env(workdir, api_url, **env_extra)
    subprocess.run(
        [sys.executable, "-m", "dashboard.cli", "create-agent", AGENT_EMAIL, "--password-stdin"],
        input=AGENT_PASSWORD + "\n", text=True, env=env, cwd=ROOT, check=True, capture_output=True,
    )
    with served_command([sys.executable, "-m", "dashboard.cli", "serve"], env, "dashboard serve") as url:
        yield url


@contextmanager
def served_command(command: list[str], env: dict[str, str], name: str) -> Iterator[str]:
    """Run ``command`` with ``--host 127.0.0.1 --port <a free port>`` until it answers
    /healthz; yield its URL; stop it."""
    port = closed_port()
    process = subprocess.Popen(
        [*command, "--host", "127.0.0.1", "--port", str(port)],
        env=env, cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )
    url = f"http://127.0.0.1:{port}"
    try:
        wait_until(lambda: healthy(url) or process.poll() is not None, timeout=20, message=f"{name} did not start")
        assert process.poll() is None, f"{name} exited at start-up"
        yield url
    finally:
        process.terminate()
        try:
            process.wait(timeout=15)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


def logged_in_session(base_url: str) -> requests.Session:
    """A requests session logged in as the test agent."""
    from tests.conftest import csrf_token_from

    session = requests.Session()
    token = csrf_token_from(session.get(f"{base_url}/login", timeout=5).text)
    session.post(f"{base_url}/login", data={"email": AGENT_EMAIL, "password": AGENT_PASSWORD, "csrf_token": token}, timeout=5)
    return session
