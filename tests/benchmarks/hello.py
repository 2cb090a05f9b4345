"""The benchmark's reference: a hello-world Flask route served by gunicorn exactly as
`dashboard serve` serves the dashboard (dashboard.serving.serve, whose gunicorn_options
both share), so that the dashboard's own cost per request can be read as a ratio to the
least a Flask app costs on the same server, machine and moment.

    python -m tests.benchmarks.hello --port 8001   (needs the dashboard's environment)
"""
from __future__ import annotations

import argparse

from flask import Flask

from dashboard.cli import load_settings
from dashboard.serving import ServeOptions, serve


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
    parser.add_argument("--workers", type=int, default=ServeOptions.workers)
    parser.add_argument("--threads", type=int, default=ServeOptions.threads)
    args = parser.parse_args()
    # No drain: nothing balances traffic to the reference, so it may stop at once.
    options = ServeOptions(host=args.host, port=args.port, workers=args.workers, threads=args.threads, drain_seconds=0)
    serve(load_settings(), options, load_app=hello_app)


if __name__ == "__main__":
    main()
