"""The benchmark's reference: a hello-world Flask route served by gunicorn with exactly
the options `dashboard serve` uses (dashboard.cli.gunicorn_options), so that the
dashboard's own cost per request can be read as a ratio to the least a Flask app costs
on the same server, machine and moment.

    python -m tests.benchmarks.hello --port 8001   (needs the dashboard's environment)
"""
from __future__ import annotations

import argparse

from flask import Flask

from dashboard.cli import SERVE_THREADS, SERVE_WORKERS, gunicorn_options, load_settings, run_gunicorn


def hello_app() -> Flask:
    app = Flask(__name__)

    @app.get("/")
    def hello():
        return "Hello, world!"

    @app.get("/healthz")
    def healthz():
        return "ok"

    return app


def main() -> None:
    parser = argparse.ArgumentParser(description="Serve the hello-world reference like `dashboard serve`.")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--workers", type=int, default=SERVE_WORKERS)
    parser.add_argument("--threads", type=int, default=SERVE_THREADS)
    args = parser.parse_args()
    options = gunicorn_options(load_settings(), host=args.host, port=args.port, workers=args.workers, threads=args.threads)
    run_gunicorn(hello_app, options)


if __name__ == "__main__":
    main()
