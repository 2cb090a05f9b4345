"""A team's load on two instances: `make bench-team` (options: --agents, --seconds, --latency).

Starts a throwaway PostgreSQL and Redis, the PostMetric stand-in (100 ms per answer,
enforcing 100 requests a minute per key), and two `dashboard serve` instances with two
workers each on one database and one Redis; then Locust, headless, simulates support
agents on both for a bounded time. It prints requests/s, p50/p95/p99, errors, upstream
calls against the distinct visitors asked for and the budget, audit rows against
look-ups, and the memory of each worker. Everything listens on 127.0.0.1 only.

Look-ups are counted as the audit trail defines them (``dashboard.audit.must_record``):
every full visitor view the dashboard answered to a signed-in agent is one look-up and
one row, a 429 held back by the shared budget included. The count comes from the
instances' own request log, so a request Locust sent that never reached the dashboard (a
dropped connection) is an error and not a look-up, and a look-up that came back as the
log-in page is neither. (A fragment within an hour of the agent's look-up of that visitor
folds into it by design; the simulated agents open full views only.)

The instances keep idle connections open ``--keep-alive`` seconds, longer than an agent's
pause between look-ups (Locust plays the balancer, whose idle timeout must be shorter than
the server's): with gunicorn's 5 s default, a connection re-used as it expires is closed
without an answer (`--keep-alive 5` to see it).
"""
from __future__ import annotations

import argparse
import csv
import json
import os
import subprocess
import sys
import tempfile
import time
from collections import Counter
from collections.abc import Iterable
from pathlib import Path

from sqlalchemy import create_engine, func, select

ROOT = Path(__file__).resolve().parents[2]
PASSWORD = "benchmark agent password"
LOOKUP_ROUTE = "/visitors/<visitor_id>"
# Not a view of the visitor: sent elsewhere (log-in, canonical URL) or an ID refused.
NOT_A_VIEW = {301, 302, 303, 307, 308, 400}


def make_agents(database_url: str, count: int) -> None:
    """``count`` agents agent0..agentN-1 (one password hash, copied: hashing 100 would take long)."""
    from dashboard.db import migrate
    from dashboard.models import Agent
    from sqlalchemy.orm import Session

    engine = create_engine(database_url)
    migrate(engine)
    template = Agent(email="template@example.com", is_admin=False, active=True)
    template.set_password(PASSWORD)
    with Session(engine) as session:
        for number in range(count):
            session.add(Agent(email=f"agent{number}@example.com", is_admin=False, active=True, password_hash=template.password_hash))
        session.commit()
    engine.dispose()


def worker_rss(port: int) -> list[tuple[int, float]]:
    """(pid, MB) of the gunicorn workers of the instance on ``port`` (the processes whose parent serves it)."""
    masters = []
    for status in Path("/proc").glob("[0-9]*/cmdline"):
        try:
            command = status.read_bytes().split(b"\0")
        except OSError:
            continue
        if b"serve" in command and str(port).encode() in command:
            masters.append(int(status.parent.name))
    workers = []
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
            if int(fields[1]) in masters:
                rss = next(line for line in (stat.parent / "status").read_text().splitlines() if line.startswith("VmRSS"))
                workers.append((int(stat.parent.name), int(rss.split()[1]) / 1024))
        except (OSError, StopIteration, IndexError, ValueError):
            continue
    return sorted(workers)


def answered_lookups(lines: Iterable[str]) -> Counter[str]:
    """From the instances' JSON request log: the look-ups the dashboard answered to a
    signed-in agent (``answered``, of which ``held`` were 429s of the shared budget), and
    look-ups that came from an agent not signed in (``logged_out``)."""
    counts: Counter[str] = Counter()
    for line in lines:
        try:
            fields = json.loads(line)
        except ValueError:
            continue  # gunicorn's own lines
        if not isinstance(fields, dict) or fields.get("route") != LOOKUP_ROUTE or fields.get("method") != "GET":
            continue
        if fields.get("agent_id") is None:
            counts["logged_out"] += 1
        elif fields.get("status") not in NOT_A_VIEW:
            counts["answered"] += 1
            counts["held"] += fields.get("status") == 429
    return counts


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--agents", type=int, default=100, help="simulated agents (default 100)")
    parser.add_argument("--seconds", type=int, default=60, help="how long Locust runs (default 60)")
    parser.add_argument("--latency", type=float, default=0.1, help="the stand-in's seconds per answer (default 0.1)")
    parser.add_argument(
        "--keep-alive", type=int, default=30, help="the instances' keep-alive, longer than an agent's pause (default 30)"
    )
    args = parser.parse_args(argv)

    from dashboard.demo import FakeApiServer
    from dashboard.models import LookupEvent
    from tests.support.serving import served_dashboard
    from tests.support.services import fresh_postgres_database, postgres_server, redis_server

    workdir = Path(tempfile.mkdtemp(prefix="team-load-"))
    with postgres_server() as pg, redis_server() as redis_url, FakeApiServer(latency=args.latency, rate_limit=100) as api:
        database = fresh_postgres_database(pg, "team_load")
        make_agents(database, args.agents)
        shared = {
            "DATABASE_URL": database,
            "REDIS_URL": redis_url,
            "LOGIN_LIMIT_PER_ADDRESS": "10000 per 15 minutes",  # every simulated agent logs in from 127.0.0.1
        }
        serve_args = ("--drain-seconds", "0", "--keep-alive", str(args.keep_alive))
        with served_dashboard(workdir, api.url, agent=False, workers=2, serve_args=serve_args, **shared) as one, served_dashboard(
            workdir, api.url, agent=False, workers=2, serve_args=serve_args, **shared
        ) as other:
            env = {**os.environ, "TEAM_HOSTS": f"{one},{other}", "TEAM_PASSWORD": PASSWORD, "TEAM_AGENTS": str(args.agents)}
            started = time.monotonic()
            subprocess.run(
                [
                    sys.executable, "-m", "locust", "-f", str(ROOT / "tests/benchmarks/locustfile.py"), "--headless",
                    "-u", str(args.agents), "-r", str(max(1, args.agents // 10)), "-t", f"{args.seconds}s",
                    "--host", one,
                    # A look-up in flight at the end is let finish: the dashboard answers and audits it.
                    "--stop-timeout", "60", "--csv", str(workdir / "locust"), "--only-summary", "--loglevel", "ERROR",
                ],
                env=env, cwd=ROOT, check=False, stdout=subprocess.DEVNULL,
            )
            elapsed = time.monotonic() - started
            rss = worker_rss(int(one.rsplit(":", 1)[1])) + worker_rss(int(other.rsplit(":", 1)[1]))
        engine = create_engine(database)
        with engine.connect() as connection:
            audit_rows = connection.execute(select(func.count()).select_from(LookupEvent)).scalar_one()
            outcomes = dict(connection.execute(select(LookupEvent.outcome, func.count()).group_by(LookupEvent.outcome)).all())
        engine.dispose()
        stats = api.stats
        distinct = len([visitor for visitor in stats.calls_by_visitor])
        calls, refused = stats.calls, stats.rate_limited

    rows = {row["Name"]: row for row in csv.DictReader(open(workdir / "locust_stats.csv"))}
    lookups = rows["/visitors/[id]"]
    sent, failed = int(lookups["Request Count"]), int(lookups["Failure Count"])
    failures = list(csv.DictReader(open(workdir / "locust_failures.csv")))
    errors = sum(int(f["Occurrences"]) for f in failures)  # the locustfile takes a 429 with its sentence as an answer
    answered = answered_lookups(line for log in sorted(workdir.glob("serve-*.log")) for line in log.read_text().splitlines())
    print(f"{args.agents} agents, 2 instances x 2 workers (keep-alive {args.keep_alive} s), PostgreSQL + Redis, "
          f"stand-in {args.latency * 1000:.0f} ms, 100/min; {elapsed:.0f} s of load")
    print(f"look-ups sent: {sent} ({float(lookups['Requests/s']):.1f}/s), {sent - failed} answered as look-ups, {failed} failed; "
          f"all requests {float(rows['Aggregated']['Requests/s']):.1f}/s")
    print(f"look-up latency ms: p50 {lookups['50%']}  p95 {lookups['95%']}  p99 {lookups['99%']}  max {float(lookups['Max Response Time']):.0f}")
    print(f"errors: {errors}" + "".join(f"; {f['Method']} {f['Name']}: {f['Occurrences']} x {f['Error']}" for f in failures))
    print(f"look-ups held back by the shared budget (429 with its sentence): {answered['held']}")
    print(f"upstream calls: {calls} for {distinct} distinct visitors (budget 100/min over {elapsed / 60:.1f} min); "
          f"upstream 429s: {refused}")
    # The audit's rule: every full view answered to a signed-in agent is one look-up and one row.
    print(f"look-ups the dashboard answered to a signed-in agent (its request log): {answered['answered']}; "
          f"audit rows: {audit_rows} ({'equal' if audit_rows == answered['answered'] else 'NOT EQUAL'}); "
          f"outcomes {outcomes}; look-ups from agents not signed in: {answered['logged_out']}")
    print("RSS per worker (MB): " + ", ".join(f"{mb:.0f}" for _, mb in rss))

if __name__ == "__main__":
    main()
