"""`make run` and `dashboard demo`: a port of one's choosing, and a busy port that says how."""
from __future__ import annotations

import os
import shutil
import socket
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]


def demo_env(tmp_path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("SECRET_KEY", "DATABASE_URL", "POSTMETRIC_"))}
    env.update(DASHBOARD_INSTANCE_PATH=str(tmp_path), DASHBOARD_ENV_FILE=str(tmp_path / "none.env"), PYTHONUNBUFFERED="1")
    return env


def test_a_busy_port_says_how_to_pick_another(tmp_path):
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        result = subprocess.run(
            [sys.executable, "-m", "dashboard.cli", "demo", "--port", str(port)],
            cwd=ROOT, env=demo_env(tmp_path), capture_output=True, text=True, timeout=60,
        )
    assert result.returncode != 0
    assert f"Port {port} is in use" in result.stderr
    assert "make run PORT=5050" in result.stderr and "--port 5050" in result.stderr
    assert "Traceback" not in result.stderr + result.stdout


@pytest.mark.skipif(shutil.which("make") is None, reason="make is not installed")
@pytest.mark.parametrize(("args", "port"), [([], "5000"), (["PORT=5050"], "5050")])
def test_make_run_hands_its_port_to_the_demo(args, port):
    # -n prints the commands without running them: the demo is not started.
    result = subprocess.run(["make", "-n", "run", *args], cwd=ROOT, capture_output=True, text=True, timeout=30)
    assert result.returncode == 0, result.stderr
    assert f"dashboard demo --port {port}" in result.stdout
