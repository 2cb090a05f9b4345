"""The audit trail: every look-up, refresh and export recorded (nothing lost under
concurrent writers), the admin's filtered and paged view, the CSV export, retention."""
from __future__ import annotations

import csv
import io
import os
import subprocess
import sys
import threading
import time
from datetime import datetime, timedelta, timezone
from pathlib import Path

import pytest
from click.testing import CliRunner
from sqlalchemy import func, select

from dashboard import audit
from dashboard.cli import main
from dashboard.extensions import db
from dashboard.models import Agent, LookupEvent
from tests.conftest import AGENT_EMAIL, add_agent
from tests.support.accounts import (
    ADMIN_EMAIL,
    ADMIN_PASSWORD,
    logged_in_client,
    make_admin,
)
from tests.support.html import attrs, one, soup

ROOT = Path(__file__).resolve().parents[2]


def events(app) -> list[LookupEvent]:
    with app.app_context():
        return list(db.session.scalars(select(LookupEvent).order_by(LookupEvent.id)))


def event_count(app) -> int:
    with app.app_context():
        return db.session.scalar(select(func.count()).select_from(LookupEvent))


# -- recording -----------------------------------------------------------------------------


@pytest.mark.parametrize("ticket", [None, "ZD-4711"])
def test_each_look_up_and_refresh_is_recorded_with_the_ticket_when_there_is_one(app, logged_in, ticket):
    query = f"?ticket={ticket}" if ticket else ""
    before = datetime.now(timezone.utc)
    logged_in.get(f"/visitors/visitor_123{query}")
    logged_in.get(f"/visitor?visitorId=visitor_unknown{'&' + query[1:] if ticket else ''}", headers={"HX-Request": "true", "HX-Target": "main"})
    logged_in.get(f"/visitors/visitor_123?refresh=1{'&' + query[1:] if ticket else ''}")
    logged_in.get(f"/visitors/fail-500{query}")
    # Narrowing, filtering and paging re-use the look-up: no new rows.
    logged_in.get(f"/visitors/visitor_123?session=x{'&' + query[1:] if ticket else ''}", headers={"HX-Request": "true", "HX-Target": "visitor-detail"})
    rows = events(app)
    assert [(e.visitor_id, e.action, e.outcome, e.site, e.ticket) for e in rows] == [
        ("visitor_123", "lookup", "ok", "default", ticket),
        ("visitor_unknown", "lookup", "unknown", "default", ticket),
        ("visitor_123", "refresh", "ok", "default", ticket),
        ("fail-500", "lookup", "server_error", "default", ticket),
    ]
    agent_id = rows[0].agent_id
    assert all(e.agent_id == agent_id for e in rows) and agent_id is not None
    for e in rows:
        created = e.created_at.replace(tzinfo=timezone.utc) if e.created_at.tzinfo is None else e.created_at
        assert before - timedelta(seconds=1) <= created <= datetime.now(timezone.utc)


def test_a_request_that_only_claims_to_be_a_fragment_is_still_recorded(app, logged_in, fake_api):
    fragment = {"HX-Request": "true", "HX-Target": "visitor-detail"}
    # A visitor this agent never opened, fetched through a "fragment": recorded.
    logged_in.get("/visitors/visitor_large?session=x", headers=fragment)
    assert [(e.visitor_id, e.action) for e in events(app)] == [("visitor_large", "lookup")]
    # Cached for another agent, seen by this one through a fragment: recorded too.
    other = make_admin(app)
    colleague = logged_in_client(app, ADMIN_EMAIL, ADMIN_PASSWORD)
    colleague.get("/visitors/visitor_123")
    calls = fake_api.stats.calls
    logged_in.get("/visitors/visitor_123?q=cart", headers={"HX-Request": "true", "HX-Target": "timeline"})
    assert fake_api.stats.calls == calls  # from the cache
    mine = [e.visitor_id for e in events(app) if e.agent_id != other]
    assert mine == ["visitor_large", "visitor_123"]
    # Further narrowing of the same visitor belongs to that look-up.
    logged_in.get("/visitors/visitor_123?q=checkout", headers={"HX-Request": "true", "HX-Target": "timeline"})
    assert len([e for e in events(app) if e.agent_id != other]) == 2


def test_a_live_tick_that_asks_postmetric_is_recorded_as_a_refresh(app, logged_in):
    logged_in.get("/visitors/visitor_live?live=1")
    logged_in.get("/visitors/visitor_live?live=1&refresh=1", headers={"HX-Request": "true", "HX-Target": "visitor-detail"})
    assert [e.action for e in events(app)] == ["lookup", "refresh"]


@pytest.mark.parametrize("ticket", [None, "ZD-4711"])
def test_an_export_is_recorded_with_its_ticket(app, logged_in, ticket):
    query = f"&ticket={ticket}" if ticket else ""
    assert logged_in.get(f"/visitor/export?visitorId=visitor_123&format=csv{query}").status_code == 200
    [event] = events(app)
    assert (event.action, event.site, event.visitor_id, event.ticket, event.outcome) == ("export", "default", "visitor_123", ticket, "ok")


def test_a_very_long_ticket_is_cut_not_refused(app, logged_in):
    logged_in.get("/visitors/visitor_123?ticket=" + "T" * 500)
    assert events(app)[0].ticket == "T" * 200


def test_a_locked_database_is_retried(app, monkeypatch):
    from sqlalchemy.exc import OperationalError

    calls = []
    real_begin = app.extensions["db_engine"].begin

    def flaky_begin():
        calls.append(1)
        if len(calls) < 3:
            raise OperationalError("INSERT", {}, Exception("database is locked"))
        return real_begin()

    monkeypatch.setattr(app.extensions["db_engine"], "begin", flaky_begin)
    monkeypatch.setattr(audit.time, "sleep", lambda seconds: None)
    audit.record_event(app.extensions["db_engine"], agent_id=None, site="s", visitor_id="v", action="lookup", outcome="ok")
    assert len(calls) == 3 and event_count(app) == 1


def test_eight_threads_writing_at_once_lose_nothing(app, fake_api):
    """8 agents × 25 look-ups through the app at the same moment: exactly 200 rows."""
    threads_count, per_thread = 8, 25
    clients = []
    for n in range(threads_count):
        add_agent(app, f"agent{n}@example.com")
        clients.append(logged_in_client(app, f"agent{n}@example.com"))
    start = threading.Barrier(threads_count)
    failures: list[BaseException] = []

    def work(n: int) -> None:
        try:
            start.wait()
            for i in range(per_thread):
                response = clients[n].get(f"/visitors/visitor_unknown?ticket=T{n}-{i}")
                assert response.status_code == 200
        except BaseException as error:  # noqa: BLE001 - reported below
            failures.append(error)

    workers = [threading.Thread(target=work, args=(n,)) for n in range(threads_count)]
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join(timeout=60)
    assert not failures, failures
    rows = events(app)
    assert len(rows) == threads_count * per_thread
    assert len({e.ticket for e in rows}) == threads_count * per_thread
    assert fake_api.stats.calls == 1  # the look-ups themselves came from the cache


@pytest.mark.sqlite_only("about SQLite's file locking: the writer processes open the SQLite file by its path")
def test_two_processes_writing_one_sqlite_file_lose_nothing(app, fake_api, settings, tmp_path):
    """Two server processes (gunicorn's workers, here two Python processes) write the
    audit trail of one SQLite file at the same moment: every row arrives."""
    per_process = 60
    add_agent(app)
    database_file = settings.database_url.removeprefix("sqlite:///")
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    processes = [
        subprocess.Popen(
            [sys.executable, "-m", "tests.support.audit_writer", database_file, fake_api.url, str(per_process), label],
            cwd=ROOT, env=env, stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
        )
        for label in ("P1", "P2")
    ]
    try:
        for process in processes:
            assert process.stdout.readline().strip() == "ready", process.stderr.read()
        for process in processes:  # both start writing at once
            process.stdin.write("go\n")
            process.stdin.flush()
        for process in processes:
            out, err = process.communicate(timeout=120)
            assert process.returncode == 0 and out.strip() == "done", err
    finally:
        for process in processes:
            if process.poll() is None:
                process.kill()
                process.wait()
    rows = events(app)
    assert len(rows) == 2 * per_process
    assert {e.ticket for e in rows} == {f"P{p}-{n}" for p in (1, 2) for n in range(per_process)}


def test_recording_adds_little_to_a_look_up(app, logged_in):
    """The audit write is one small insert: well under the time of the page itself."""
    engine = app.extensions["db_engine"]
    timings = []
    for n in range(40):
        started = time.perf_counter()
        audit.record_event(engine, agent_id=None, site="default", visitor_id=f"v{n}", action="lookup", outcome="ok")
        timings.append(time.perf_counter() - started)
    timings.sort()
    assert timings[len(timings) // 2] < 0.05, f"median audit write {timings[len(timings) // 2] * 1000:.1f} ms"


# -- the admin's view ----------------------------------------------------------------------


@pytest.fixture
def trail(app):
    """Two agents' look-ups on three days, and a logged-in admin."""
    make_admin(app)
    other = add_agent(app, "other@example.com")
    agent = add_agent(app)
    engine = app.extensions["db_engine"]
    day = datetime(2024, 3, 10, 12, 0, tzinfo=timezone.utc)
    for n in range(60):
        audit.record_event(engine, agent_id=agent, site="default", visitor_id="visitor_123", action="lookup", outcome="ok", created_at=day + timedelta(minutes=n))
    audit.record_event(engine, agent_id=other, site="shop", visitor_id="=HYPERLINK(\"http://x\")", action="export", outcome="ok", ticket="@SUM(1)", created_at=day + timedelta(days=1))
    audit.record_event(engine, agent_id=other, site="default", visitor_id="visitor_live", action="refresh", outcome="ok", ticket="T-1", created_at=day + timedelta(days=2))
    return logged_in_client(app, ADMIN_EMAIL, ADMIN_PASSWORD), agent, other


def test_the_audit_page_lists_newest_first_a_page_at_a_time(trail):
    admin, _, _ = trail
    html = admin.get("/admin/audit").text
    assert "62 events" in html and "page 1 of 2" in html
    assert html.index("visitor_live") < html.index("HYPERLINK") < html.index("visitor_123")
    assert len(soup(html).select("#audit-results tr")) == 1 + 50
    second = admin.get("/admin/audit?page=2").text
    assert len(soup(second).select("#audit-results tr")) == 1 + 12 and "Newer" in second


def test_the_audit_page_filters_by_agent_visitor_and_dates(trail):
    admin, agent, other = trail
    assert "60 events match" in admin.get(f"/admin/audit?agent={agent}").text
    assert "2 events match" in admin.get(f"/admin/audit?agent={other}").text
    assert "1 event matches" in admin.get("/admin/audit?visitor=visitor_live").text
    assert "60 events match" in admin.get("/admin/audit?from=2024-03-10&to=2024-03-10").text
    assert "2 events match" in admin.get("/admin/audit?from=2024-03-11").text
    assert "61 events match" in admin.get("/admin/audit?to=2024-03-11").text
    bad = admin.get("/admin/audit?from=2024-03-12&to=2024-03-01")
    assert bad.status_code == 400 and "after the “to” date" in bad.text


def test_dates_are_days_in_the_admins_time_zone(app, trail):
    admin, _, _ = trail
    with app.app_context():
        me = db.session.scalars(select(Agent).where(Agent.email == ADMIN_EMAIL)).one()
        me.timezone = "Pacific/Auckland"  # UTC+13 in March: 2024-03-10 12:00 UTC is the 11th there
        db.session.commit()
    assert "60 events match" in admin.get("/admin/audit?from=2024-03-11&to=2024-03-11").text


def test_the_filter_updates_in_place_and_the_url_follows(trail):
    admin, agent, _ = trail
    response = admin.get(f"/admin/audit?agent={agent}&page=2", headers={"HX-Request": "true", "HX-Target": "audit-results"})
    html = response.text
    [results] = soup(html).find_all(recursive=False)  # only the block htmx swaps
    assert results.name == "div" and results["id"] == "audit-results" and "<html" not in html
    assert response.headers["HX-Push-Url"] == f"/admin/audit?agent={agent}&page=2"


def parse_csv(response) -> list[dict[str, str]]:
    return list(csv.DictReader(io.StringIO(response.text)))


def test_csv_export_of_everything_and_of_the_filtered_set(trail):
    admin, _, other = trail
    everything = admin.get("/admin/audit.csv")
    assert everything.mimetype == "text/csv" and "attachment" in everything.headers["Content-Disposition"]
    rows = parse_csv(everything)
    assert len(rows) == 62  # all of them, not one page
    assert list(rows[0]) == ["time_utc", "agent", "site", "visitor_id", "action", "outcome", "ticket"]
    assert rows[0]["time_utc"] == "2024-03-12T12:00:00+00:00" and rows[0]["agent"] == "other@example.com"
    filtered = parse_csv(admin.get(f"/admin/audit.csv?agent={other}&from=2024-03-11&to=2024-03-11"))
    assert len(filtered) == 1 and filtered[0]["action"] == "export" and filtered[0]["site"] == "shop"
    # Cells a spreadsheet would run as formulas are defused.
    assert filtered[0]["visitor_id"] == "'=HYPERLINK(\"http://x\")" and filtered[0]["ticket"] == "'@SUM(1)"


def test_the_export_link_carries_the_filter(trail):
    admin, agent, _ = trail
    page = soup(admin.get(f"/admin/audit?agent={agent}&visitor=visitor_123"))
    assert attrs(page, 'a[href^="/admin/audit.csv"]', "href") == [f"/admin/audit.csv?agent={agent}&visitor=visitor_123"]


def test_untrusted_visitor_ids_are_escaped_on_the_audit_page(app, trail):
    admin, agent, _ = trail
    audit.record_event(app.extensions["db_engine"], agent_id=agent, site="default", visitor_id="<script>alert(1)</script>", action="lookup", outcome="ok")
    html = admin.get("/admin/audit").text
    assert "<script>alert(1)" not in html and "&lt;script&gt;alert(1)" in html


# -- retention -----------------------------------------------------------------------------


def test_prune_audit_deletes_what_is_older_than_the_retention_period(app, settings):
    engine = app.extensions["db_engine"]
    now = datetime.now(timezone.utc)
    for age in (1, 89, 91, 400):
        audit.record_event(engine, agent_id=None, site="default", visitor_id=f"age-{age}", action="lookup", outcome="ok", created_at=now - timedelta(days=age))
    env = {
        "SECRET_KEY": "x" * 32,
        "DATABASE_URL": settings.database_url,
        "DASHBOARD_ENV_FILE": str(Path(settings.instance_path) / "none.env"),
    }
    runner = CliRunner()
    dry = runner.invoke(main, ["prune-audit", "--dry-run"], env=env)
    assert dry.exit_code == 0 and "Would delete 2 audit events older than 90 days" in dry.output
    assert event_count(app) == 4
    done = runner.invoke(main, ["prune-audit"], env=env)
    assert done.exit_code == 0 and "Deleted 2 audit events" in done.output
    assert sorted(e.visitor_id for e in events(app)) == ["age-1", "age-89"]
    shorter = runner.invoke(main, ["prune-audit"], env={**env, "AUDIT_RETENTION_DAYS": "30"})
    assert "Deleted 1 audit event older than 30 days" in shorter.output
    assert runner.invoke(main, ["prune-audit", "--days", "0"], env=env).exit_code != 0
    assert [e.visitor_id for e in events(app)] == ["age-1"]


def test_pruning_works_in_batches(app, monkeypatch):
    monkeypatch.setattr(audit, "PRUNE_BATCH", 3)
    engine = app.extensions["db_engine"]
    old = datetime.now(timezone.utc) - timedelta(days=100)
    for n in range(7):
        audit.record_event(engine, agent_id=None, site="s", visitor_id=f"v{n}", action="lookup", outcome="ok", created_at=old)
    audit.record_event(engine, agent_id=None, site="s", visitor_id="new", action="lookup", outcome="ok")
    assert audit.prune(engine, older_than=audit.retention_cutoff(90)) == 7
    assert [e.visitor_id for e in events(app)] == ["new"]


def test_the_retention_period_is_shown_to_admins(app):
    make_admin(app)
    html = logged_in_client(app, ADMIN_EMAIL, ADMIN_PASSWORD).get("/admin/audit").text
    assert "kept 90 days" in html and AGENT_EMAIL not in html  # no agent here yet
