"""The ``dashboard`` command: demo, serve, create-agent, prune-audit, fake-api."""
from __future__ import annotations

import gc
import secrets
import sys

import click
from sqlalchemy import select
from sqlalchemy.orm import Session

from dashboard.config import ConfigError, Settings
from dashboard.passwords import MIN_PASSWORD_LENGTH, password_problem

__all__ = ["MIN_PASSWORD_LENGTH", "main"]
DEMO_EMAIL = "demo@example.com"
LOOPBACK_HOSTS = ("127.0.0.1", "::1", "localhost")
# `dashboard serve`: one process with many threads (see serve()).
SERVE_WORKERS, SERVE_THREADS = 1, 32


def load_settings(mode: str | None = None, **changes: object) -> Settings:
    """Settings from the environment (and .env), or a clear sentence and exit status 2."""
    try:
        settings = Settings.from_env(mode=mode)
        return settings.with_changes(**changes) if changes else settings
    except ConfigError as error:
        raise click.ClickException(str(error)) from None


def prepare_database(settings: Settings):
    """Create or migrate the schema; return the engine."""
    from dashboard.db import make_engine, migrate

    engine = make_engine(settings.database_url)
    try:
        migrate(engine)
    except Exception as error:  # a bad DATABASE_URL must not end in a traceback
        raise click.ClickException(f"Could not prepare the database at DATABASE_URL: {error.__class__.__name__}: {error}") from None
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


def freeze_startup_objects(worker: object) -> None:
    """Exempt what the worker built at start (the app, its modules, pycountry's tables)
    from garbage collection: a full collection otherwise walks all of it and stalls
    whichever look-up triggers it (about 45 ms on the 2-core benchmark machine)."""
    gc.collect()
    gc.freeze()


def gunicorn_options(settings: Settings, *, host: str, port: int, workers: int, threads: int) -> dict[str, object]:
    """How `dashboard serve` runs gunicorn (the benchmark serves its hello-world reference
    with the same options, so the two are compared like for like)."""
    return {
        "bind": f"{host}:{port}",
        "workers": workers,
        "worker_class": "gthread",
        "threads": threads,
        # A look-up may wait up to the retry deadline; leave room above it.
        "timeout": int(settings.upstream_deadline + settings.upstream_read_timeout + 30),
        "accesslog": "-",
        "forwarded_allow_ips": settings.forwarded_allow_ips,
        "post_worker_init": freeze_startup_objects,
    }


def run_gunicorn(load_app, options: dict[str, object]) -> None:
    """Serve the WSGI app that ``load_app()`` builds (in each worker) with gunicorn."""
    from gunicorn.app.base import BaseApplication

    class Server(BaseApplication):
        def load_config(self) -> None:
            for name, value in options.items():
                self.cfg.set(name, value)

        def load(self):
            return load_app()

    Server().run()


@main.command()
@click.option("--host", default="127.0.0.1", show_default=True)
@click.option("--port", default=5000, show_default=True, type=int)
def demo(host: str, port: int) -> None:
    """The whole product on this machine: the dashboard, the stand-in, a demo agent."""
    from werkzeug.serving import make_server

    from dashboard import create_app
    from dashboard.demo import DEMO_API_KEY, DEMO_VISITORS, FakeApiServer

    api = FakeApiServer()  # on a free local port
    api.start()
    try:
        # Demo mode's own SQLite file unless DATABASE_URL is set.
        settings = load_settings(mode="demo")
        settings = settings.with_changes(
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
        server = make_server(host, port, app, threaded=True)
        url = f"http://{host}:{server.server_port}"
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
        api.stop()


@main.command()
@click.option("--host", default="127.0.0.1", show_default=True, help="Use 0.0.0.0 to listen on every interface.")
@click.option("--port", default=8000, show_default=True, type=int)
@click.option("--workers", default=SERVE_WORKERS, show_default=True, type=click.IntRange(1, 64), help="Server processes.")
@click.option("--threads", default=SERVE_THREADS, show_default=True, type=click.IntRange(1, 512), help="Threads per process: a look-up waiting on PostMetric holds one.")
def serve(host: str, port: int, workers: int, threads: int) -> None:
    """Serve the dashboard in production with gunicorn.

    One process with many threads is the default: look-ups mostly wait on
    PostMetric, and one process keeps one cache, one in-flight fetch per visitor and
    one exact rate budget. With more workers each gets an equal share of the budget,
    so together they still stay within it.
    """
    settings = load_settings()
    settings = settings.with_changes(upstream_budget_per_minute=max(1, settings.upstream_budget_per_minute // workers))
    prepare_database(settings).dispose()

    def load():
        from dashboard import create_app

        return create_app(settings, run_migrations=False)

    run_gunicorn(load, gunicorn_options(settings, host=host, port=port, workers=workers, threads=threads))


if __name__ == "__main__":  # pragma: no cover
    main()
