"""The ``dashboard`` command: demo, serve, migrate, create-agent, prune-audit, fake-api."""
from __future__ import annotations

import errno
import secrets
import socket
import sys
from collections.abc import Iterator
from contextlib import contextmanager

import click
from sqlalchemy import select
from sqlalchemy.orm import Session

from dashboard.config import ConfigError, Settings
from dashboard.passwords import MIN_PASSWORD_LENGTH, password_problem
from dashboard.serving import ServeOptions

__all__ = ["MIN_PASSWORD_LENGTH", "main"]
DEMO_EMAIL = "demo@example.com"
LOOPBACK_HOSTS = ("127.0.0.1", "::1", "localhost")


def load_settings(mode: str | None = None, **changes: object) -> Settings:
    """Settings from the environment (and .env), or a clear sentence and exit status 2."""
    try:
        settings = Settings.from_env(mode=mode)
        return settings.with_changes(**changes) if changes else settings
    except ConfigError as error:
        raise click.ClickException(str(error)) from None


@contextmanager
def database_sentences() -> Iterator[None]:
    """Database problems as a sentence and exit status 1, never a traceback."""
    from dashboard.db import DatabaseUnavailable

    try:
        yield
    except DatabaseUnavailable as problem:
        raise click.ClickException(str(problem)) from None
    except Exception as error:  # a bad DATABASE_URL must not end in a traceback
        raise click.ClickException(f"Could not prepare the database at DATABASE_URL: {error.__class__.__name__}: {error}") from None


def prepare_database(settings: Settings):
    """Create or migrate the schema (once, under the migration lock); return the engine."""
    from dashboard.db import make_engine, migrate

    with database_sentences():
        engine = make_engine(settings.database_url)
        migrate(engine)
    return engine


def save_agent(engine, email: str, password: str, *, admin: bool, update: bool = False) -> str:
    """Create the agent (or, with ``update``, reset its password); return what was done."""
    from dashboard.models import Agent

    email = Agent.normalise_email(email)
    with Session(engine) as session:
        agent = session.scalars(select(Agent).where(Agent.email == email)).first()
        if agent is not None and not update:
            raise click.ClickException(f"An agent with the e-mail {email} already exists.")
        action = "updated" if agent is not None else "created"
        if agent is None:
            agent = Agent(email=email, is_admin=admin, active=True)
            session.add(agent)
        agent.is_admin = admin or agent.is_admin
        agent.active = True
        agent.set_password(password)
        session.commit()
    return action


def check_password_rules(password: str) -> None:
    problem = password_problem(password)
    if problem:
        raise click.ClickException(problem)


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
def main() -> None:
    """Visitor Lookup: look up one PostMetric visitor and see what they did."""


@main.command("create-agent")
@click.argument("email")
@click.option("--admin", is_flag=True, help="Give the agent the admin role.")
@click.option("--password-stdin", is_flag=True, help="Read the password from standard input instead of a prompt.")
def create_agent(email: str, admin: bool, password_stdin: bool) -> None:
    """Create an agent who can log in."""
    if "@" not in email or email.strip() != email or len(email) > 320:
        raise click.ClickException(f"{email!r} is not an e-mail address.")
    if password_stdin:
        password = sys.stdin.readline().rstrip("\r\n")
    else:
        password = click.prompt("Password", hide_input=True, confirmation_prompt=True)
    check_password_rules(password)
    settings = load_settings()
    engine = prepare_database(settings)
    save_agent(engine, email, password, admin=admin)
    click.echo(f"Created {'admin' if admin else 'agent'} {email.lower()}.")


@main.command()
def migrate() -> None:
    """Create or upgrade the schema, once, under a lock (for deployments that migrate as a
    step of their own; `serve` does the same under the same lock)."""
    from dashboard.db import make_engine, migrate as migrate_schema, schema_revision, where

    settings = load_settings()
    with database_sentences():
        engine = make_engine(settings.database_url)
        try:
            before = schema_revision(engine)
            migrate_schema(engine)
            after = schema_revision(engine)
        finally:
            engine.dispose()
    if before == after:
        click.echo(f"The database at {where(engine)} is at the newest schema ({after}); nothing to do.")
    else:
        click.echo(f"Upgraded the database at {where(engine)} from {before or 'an empty database'} to the newest schema ({after}).")


@main.command("prune-audit")
@click.option("--days", type=click.IntRange(min=1), default=None, help="Keep this many days of audit events (default: AUDIT_RETENTION_DAYS, 90).")
@click.option("--dry-run", is_flag=True, help="Only count what would be deleted.")
def prune_audit(days: int | None, dry_run: bool) -> None:
    """Delete audit events older than the retention period (run it daily, e.g. from cron)."""
    from dashboard.audit import prune, retention_cutoff

    settings = load_settings()
    days = days or settings.audit_retention_days
    cutoff = retention_cutoff(days)
    engine = prepare_database(settings)
    try:
        count = prune(engine, older_than=cutoff, dry_run=dry_run)
    finally:
        engine.dispose()
    verb = "Would delete" if dry_run else "Deleted"
    click.echo(f"{verb} {count} audit event{'' if count == 1 else 's'} older than {days} days (before {cutoff:%Y-%m-%d %H:%M} UTC).")


@main.command("fake-api")
@click.option("--host", default="127.0.0.1", show_default=True)
@click.option("--port", default=5001, show_default=True, type=int)
@click.option("--latency", default=0.0, show_default=True, type=float, help="Seconds to wait before each answer.")
def fake_api(host: str, port: int, latency: float) -> None:
    """Run the bundled PostMetric stand-in alone."""
    from dashboard.demo.fake_api import serve as serve_fake_api

    serve_fake_api(port, host=host, latency=latency)


def demo_port_problem(host: str, port: int, error: OSError) -> str:
    """What to do when the demo cannot listen on ``host:port``."""
    if error.errno == errno.EADDRINUSE:
        return (
            f"Port {port} is in use (another program, or a demo still running). Pick another "
            f"port: `make run PORT=5050` or `dashboard demo --port 5050`."
        )
    return f"Cannot listen on {host}:{port}: {error.strerror or error}. Pick another with --port (or make run PORT=...)."


@main.command()
@click.option("--host", default="127.0.0.1", show_default=True)
@click.option("--port", default=5000, show_default=True, type=int, help="The dashboard's port (make run PORT=5050).")
def demo(host: str, port: int) -> None:
    """The whole product on this machine: the dashboard, the stand-in, a demo agent."""
    from werkzeug.serving import make_server

    from dashboard import create_app
    from dashboard.demo import DEMO_API_KEY, DEMO_VISITORS, FakeApiServer

    # Bound first and here rather than by werkzeug, which prints its own advice (no word
    # of `make run PORT=`) and exits.
    try:
        listening = socket.create_server((host, port), family=socket.AF_INET6 if ":" in host else socket.AF_INET)
    except OSError as error:
        raise click.ClickException(demo_port_problem(host, port, error)) from None
    api = FakeApiServer()  # on a free local port
    api.start()
    try:
        # Demo mode's own SQLite file unless DATABASE_URL is set.
        settings = load_settings(mode="demo")
        settings = settings.with_changes(
            log_format="text",  # read by people at a terminal
            postmetric_api_url=api.url,
            postmetric_api_key=DEMO_API_KEY,
            # The stand-in listens on loopback; an admin may add more sites there to try things.
            postmetric_allowed_hosts=(*settings.postmetric_allowed_hosts, *LOOPBACK_HOSTS),
        )
        engine = prepare_database(settings)
        password = secrets.token_urlsafe(12)
        save_agent(engine, DEMO_EMAIL, password, admin=True, update=True)
        engine.dispose()
        app = create_app(settings)
        with listening:  # werkzeug serves on a copy of it
            server = make_server(host, port, app, threaded=True, fd=listening.fileno())
        url = f"http://{host}:{server.port}"
        click.echo(f"Visitor Lookup demo: {url}")
        click.echo(f"  log in as {DEMO_EMAIL} with password {password}")
        click.echo(f"  PostMetric stand-in: {api.url}")
        click.echo("  demo visitors: " + ", ".join(v.visitor_id for v in DEMO_VISITORS))
        click.echo("Press Ctrl-C to stop.")
        try:
            server.serve_forever()
        except KeyboardInterrupt:
            click.echo("Stopped.")
        finally:
            server.server_close()
    finally:
        listening.close()
        api.stop()


@main.command()
@click.option("--host", default="127.0.0.1", show_default=True, help="Use 0.0.0.0 to listen on every interface.")
@click.option("--port", default=8000, show_default=True, type=int)
@click.option("--workers", default=ServeOptions.workers, show_default=True, type=click.IntRange(1, 64), help="Server processes.")
@click.option("--threads", default=ServeOptions.threads, show_default=True, type=click.IntRange(1, 512), help="Threads per process: a look-up waiting on PostMetric holds one.")
@click.option("--graceful-timeout", default=ServeOptions.graceful_timeout, show_default=True, type=click.IntRange(1, 3600), help="Seconds requests in flight get to finish once stopping.")
@click.option("--keep-alive", default=ServeOptions.keep_alive, show_default=True, type=click.IntRange(0, 3600), help="Seconds an idle connection is kept open for its next request (a balancer's idle timeout should be longer).")
@click.option("--max-requests", default=ServeOptions.max_requests, show_default=True, type=click.IntRange(0), help="Restart a worker after this many requests (0: never); bounds any slow leak.")
@click.option("--max-requests-jitter", default=ServeOptions.max_requests_jitter, show_default=True, type=click.IntRange(0), help="Up to this many more, at random, so workers do not restart together.")
@click.option("--db-pool-size", default=None, type=click.IntRange(1, 1000), help="Database connections each process keeps open (default: DATABASE_POOL_SIZE, 10).")
@click.option("--drain-seconds", default=ServeOptions.drain_seconds, show_default=True, type=click.FloatRange(0, 600), help="On SIGTERM, seconds /readyz answers 503 while requests are still served, before stopping.")
def serve(
    host: str,
    port: int,
    workers: int,
    threads: int,
    graceful_timeout: int,
    keep_alive: int,
    max_requests: int,
    max_requests_jitter: int,
    db_pool_size: int | None,
    drain_seconds: float,
) -> None:
    """Serve the dashboard in production with gunicorn.

    One process with many threads is the default: look-ups mostly wait on
    PostMetric, and one process keeps one cache, one in-flight fetch per visitor and
    one exact rate budget. With more workers each gets an equal share of the budget,
    so together they still stay within it.
    """
    from dashboard.serving import port_problem, serve as run_server

    settings = load_settings()
    changes: dict[str, object] = {}
    if not settings.redis_url:  # with Redis every worker and instance takes from one shared budget
        changes["upstream_budget_per_minute"] = max(1, settings.upstream_budget_per_minute // workers)
    if db_pool_size is not None:
        changes["database_pool_size"] = db_pool_size
    if changes:
        settings = settings.with_changes(**changes)
    problem = port_problem(host, port)
    if problem:
        raise click.ClickException(problem)
    prepare_database(settings).dispose()
    options = ServeOptions(
        host=host,
        port=port,
        workers=workers,
        threads=threads,
        graceful_timeout=graceful_timeout,
        keep_alive=keep_alive,
        max_requests=max_requests,
        max_requests_jitter=max_requests_jitter,
        drain_seconds=drain_seconds,
    )
    run_server(settings, options)


if __name__ == "__main__":  # pragma: no cover
    main()
