"""Where one warm request's time goes, stage by stage (not part of `make test`).

    .venv/bin/python -m tests.benchmarks.stages [--repeat 200] [--path /visitors/visitor_123]

Builds the app in this process (SQLite in a temporary folder, the bundled stand-in on a
loopback port), logs in through the real login form, opens the page once so the visitor
is cached, then runs the same request ``repeat`` times timing this thread's CPU, and as often under cProfile through Flask's
test client and prints, per request, the cumulative time of each stage's entry point
(stages nest: the render includes the macros it calls) and the SQL statements sent. The
HTTP server's share is not here: the benchmark's hello-world reference measures it.
"""
from __future__ import annotations

import argparse
import cProfile
import pstats
import statistics
import tempfile
import time
from pathlib import Path

from sqlalchemy import event

from dashboard import create_app
from dashboard.demo import FakeApiServer
from tests.conftest import AGENT_EMAIL, AGENT_PASSWORD, add_agent, csrf_token_from, make_settings

# (stage, file suffix, function name): the entry point whose cumulative time is the stage's.
STAGES = (
    ("WSGI, whole request (Flask)", "flask/app.py", "wsgi_app"),
    ("session cookie: open", "flask/sessions.py", "open_session"),
    ("session cookie: save", "flask/sessions.py", "save_session"),
    ("login check (user loader)", "flask_login/login_manager.py", "_load_user"),
    ("CSRF (before request)", "flask_wtf/csrf.py", "csrf_protect"),
    ("CSRF token for the page", "flask_wtf/csrf.py", "generate_csrf"),
    ("rate limiter (before request)", "flask_limiter/_extension.py", "_check_request_limit"),
    ("security headers", "dashboard/security.py", "add_security_headers"),
    ("no-store header (login check)", "dashboard/auth/routes.py", "keep_customer_data_out_of_caches"),
    ("look-up: cache and site", "dashboard/lookup.py", "find"),
    ("audit: was it looked up recently", "dashboard/audit.py", "must_record"),
    ("audit: insert", "dashboard/audit.py", "record_event"),
    ("view context (timeline, summary)", "dashboard/visitors/view.py", "visitor_context"),
    ("  facts per visitor (assign, sort; once per copy)", "dashboard/visitors/view.py", "work_out_facts"),
    ("  timeline filter (kept per visitor and filter)", "dashboard/visitors/view.py", "timeline"),
    ("  timeline page", "dashboard/timeline.py", "page_of"),
    ("  ticket summary", "dashboard/visitors/share.py", "ticket_summary"),
    ("render (template)", "flask/templating.py", "render_template"),
    ("render (fragment)", "jinja2_fragments/flask.py", "render_block"),
)


def stage_times(stats: pstats.Stats, repeat: int) -> list[tuple[str, float, int]]:
    """(stage, ms per request, calls per request) for each stage that ran."""
    rows = []
    for stage, suffix, function in STAGES:
        total, calls = 0.0, 0
        for (filename, _line, name), (_cc, ncalls, _tt, cumulative, _callers) in stats.stats.items():  # type: ignore[attr-defined]
            if name == function and filename.endswith(suffix):
                total += cumulative
                calls += ncalls
        if calls:
            rows.append((stage, total / repeat * 1000, round(calls / repeat)))
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=200)
    parser.add_argument("--path", default="/visitors/visitor_123")
    parser.add_argument("--target", default="", help="an htmx target, to profile a fragment")
    args = parser.parse_args()

    with FakeApiServer(latency=0) as api, tempfile.TemporaryDirectory() as tmp:
        app = create_app(make_settings(Path(tmp), api.url))
        add_agent(app)
        client = app.test_client()
        token = csrf_token_from(client.get("/login").text)
        client.post("/login", data={"email": AGENT_EMAIL, "password": AGENT_PASSWORD, "csrf_token": token})
        headers = {"HX-Request": "true", "HX-Target": args.target} if args.target else {}
        for _ in range(20):  # cache the visitor, compile the templates, fill the pools
            assert client.get(args.path, headers=headers).status_code == 200

        cpu = []
        for _ in range(args.repeat):  # this thread's CPU time: other processes' load does not count
            started = time.thread_time()
            client.get(args.path, headers=headers)
            cpu.append(time.thread_time() - started)

        statements = [0]

        def count(*_args) -> None:
            statements[0] += 1

        event.listen(app.extensions["db_engine"], "before_cursor_execute", count)
        profiler = cProfile.Profile()
        profiler.enable()
        for _ in range(args.repeat):
            client.get(args.path, headers=headers)
        profiler.disable()
        app.extensions["db_engine"].dispose()

    print(f"\nOne warm request of {args.path}{' for #' + args.target if args.target else ''}, cProfile, {args.repeat} requests\n")
    print("| stage | ms per request (under cProfile) | calls per request |")
    print("|---|---:|---:|")
    for stage, ms, calls in stage_times(pstats.Stats(profiler), args.repeat):
        print(f"| {stage} | {ms:.2f} | {calls} |")
    print(f"\nSQL statements per request: {statements[0] / args.repeat:.1f}")
    print(f"CPU time per request without the profiler: median {statistics.median(cpu) * 1000:.2f} ms")


if __name__ == "__main__":
    main()
