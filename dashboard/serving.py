"""``dashboard serve``: gunicorn's threaded workers, with a graceful shutdown a balancer
can follow and metrics that add up across workers.

On SIGTERM the instance first drains: ``/readyz`` answers 503 at once (every worker
sees the drain flag file) while requests are still served for ``drain_seconds``, so
that the balancer stops sending new ones; then gunicorn stops gracefully and the
requests in flight finish (within ``graceful_timeout``). A second SIGTERM, or SIGINT,
stops at once.
"""
from __future__ import annotations

import errno
import gc
import logging
import os
import shutil
import socket
import tempfile
import time
from collections.abc import Callable, Collection
from dataclasses import dataclass
from pathlib import Path

from dashboard.config import Settings

log = logging.getLogger("dashboard.serve")
METRICS_ENV = "PROMETHEUS_MULTIPROC_DIR"


@dataclass(frozen=True)
class ServeOptions:
    host: str = "127.0.0.1"
    port: int = 8000
    workers: int = 1
    threads: int = 32
    graceful_timeout: int = 30
    keep_alive: int = 5
    max_requests: int = 10000
    max_requests_jitter: int = 1000
    drain_seconds: float = 5.0


UNIX_SOCKET_PATH_MAX = 104  # sun_path: 108 bytes on Linux, 104 on the BSDs


def port_problem(host: str, port: int) -> str | None:
    """Why ``dashboard serve`` cannot listen on ``host:port`` (None: it can), said so that
    the person starting a second instance on this host knows which option to change."""
    try:
        infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    except socket.gaierror as error:
        return f"--host {host} is not an address of this machine ({error.strerror}); use 127.0.0.1, 0.0.0.0 or one of its addresses."
    family, kind, proto, _name, address = infos[0]
    with socket.socket(family, kind, proto) as probe:
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)  # as gunicorn binds
        try:
            probe.bind(address)
        except PermissionError:
            return f"Port {port} needs privileges to listen on; choose one above 1023 with --port."
        except OSError as error:
            if error.errno == errno.EADDRINUSE:
                return (
                    f"Port {port} on {host} is already in use (another instance of the dashboard, or another "
                    f"program). Give this instance its own port with --port, e.g. --port {port + 1}."
                )
            return f"Cannot listen on {host}:{port}: {error.strerror}. Choose another address with --host or port with --port."
    return None


def control_socket_path(settings: Settings, port: int) -> Path | None:
    """Where this instance's gunicorn control socket goes: its instance folder, named by
    its port, so that instances on one host never share one (gunicorn's default is one
    path per user). None when that path is too long for a Unix socket."""
    path = Path(settings.instance_path).resolve() / f"gunicorn-{port}.ctl"
    return path if len(os.fsencode(path)) < UNIX_SOCKET_PATH_MAX else None


def freeze_startup_objects(worker: object) -> None:
    """Exempt what the worker built at start (the app, its modules, pycountry's tables)
    from garbage collection: a full collection otherwise walks all of it and stalls
    whichever look-up triggers it (about 45 ms on the 2-core benchmark machine)."""
    gc.collect()
    gc.freeze()


def mark_worker_dead(server: object, worker: object) -> None:
    """A worker that exited stops counting in the live gauges (multiprocess metrics)."""
    from prometheus_client import multiprocess

    multiprocess.mark_process_dead(worker.pid)  # type: ignore[attr-defined]


def metrics_folder(runtime: Path) -> Path:
    """Where every worker writes its metrics: PROMETHEUS_MULTIPROC_DIR if the operator set
    it, else a folder of this instance's; emptied at start (old workers' numbers must
    not be added to the new ones)."""
    folder = Path(os.environ.get(METRICS_ENV) or runtime / "metrics")
    folder.mkdir(parents=True, exist_ok=True)
    for stale in folder.glob("*.db"):
        stale.unlink()
    return folder


def gunicorn_options(settings: Settings, options: ServeOptions, known: Collection[str], control_socket: Path | None) -> dict[str, object]:
    """Gunicorn's settings for one instance, by name (``known``: the names this gunicorn
    has). One place, so that whatever ``serve`` runs (the dashboard, or the benchmark's
    hello-world reference) runs on exactly the same options."""
    chosen: dict[str, object] = {
        "bind": f"{options.host}:{options.port}",
        "workers": options.workers,
        "worker_class": "gthread",
        "threads": options.threads,
        # A look-up may wait up to the retry deadline; leave room above it.
        "timeout": int(settings.upstream_deadline + settings.upstream_read_timeout + 30),
        "graceful_timeout": options.graceful_timeout,
        "keepalive": options.keep_alive,
        "max_requests": options.max_requests,
        "max_requests_jitter": options.max_requests_jitter,
        # The app writes one JSON line per request (dashboard.requestlog).
        "accesslog": None,
        "forwarded_allow_ips": settings.forwarded_allow_ips,
        "post_worker_init": freeze_startup_objects,
        "child_exit": mark_worker_dead,
    }
    # One control socket per instance (gunicorn's default path is shared by every
    # instance a user starts on the host; the last to start would take it over).
    # Gunicorn before 25.1 has no control socket.
    if "control_socket" in known:
        if control_socket is None:
            chosen["control_socket_disable"] = True
        else:
            chosen["control_socket"] = str(control_socket)
    return chosen


def serve(settings: Settings, options: ServeOptions, load_app: Callable[[], object] | None = None) -> None:
    """Run gunicorn with ``options`` until stopped. Each worker serves the dashboard built
    from ``settings``, or what ``load_app()`` builds (the benchmark's reference)."""
    from gunicorn.app.base import BaseApplication
    from gunicorn.arbiter import Arbiter

    runtime = Path(tempfile.mkdtemp(prefix="visitor-lookup-serve-"))
    drain_flag = runtime / "draining"
    # Before any worker starts (and before prometheus_client is imported): the workers
    # inherit it and write their numbers there.
    os.environ[METRICS_ENV] = str(metrics_folder(runtime))
    settings = settings.with_changes(server_threads=options.threads, drain_flag=drain_flag)
    control_socket = control_socket_path(settings, options.port)

    class DrainingArbiter(Arbiter):
        drain_until: float | None = None

        def handle_term(self) -> None:
            if self.drain_until is not None or options.drain_seconds <= 0:
                raise StopIteration  # a second SIGTERM: stop now (gracefully)
            drain_flag.touch()
            self.drain_until = time.monotonic() + options.drain_seconds
            self.log.info("SIGTERM: draining for %g s (/readyz answers 503), then stopping", options.drain_seconds)

        def murder_workers(self) -> None:
            super().murder_workers()
            if self.drain_until is not None and time.monotonic() >= self.drain_until:
                raise StopIteration  # the loop's own way to a graceful stop

    class DashboardServer(BaseApplication):
        def load_config(self) -> None:
            for name, value in gunicorn_options(settings, options, self.cfg.settings, control_socket).items():
                self.cfg.set(name, value)

        def load(self):
            if load_app is not None:
                return load_app()
            from dashboard import create_app

            return create_app(settings, run_migrations=False)

        def run(self) -> None:
            DrainingArbiter(self).run()

    master = os.getpid()
    try:
        DashboardServer().run()
    finally:
        # Workers are forked inside run() and leave through here too; only the master
        # (the instance) removes the folder.
        if os.getpid() == master:
            shutil.rmtree(runtime, ignore_errors=True)
