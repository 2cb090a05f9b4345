"""What compressing a page costs and saves (not part of `make test`):
`.venv/bin/python -m tests.benchmarks.compression [--repeat 50]`.

Renders the login page, the home page and visitor pages (visitor_123, visitor_large) with
the Flask test client against the bundled stand-in, then times each algorithm and level
on those bodies (the work flask-compress does per answer): median milliseconds of CPU
and the compressed size. It measures; it does not pass or fail.
"""
from __future__ import annotations

import argparse
import gzip
import statistics
import tempfile
import time
from pathlib import Path

import brotli
from backports import zstd

from dashboard import create_app
from dashboard.demo import FakeApiServer
from tests.conftest import AuthActions, add_agent, make_settings

CANDIDATES = {
    "gzip 6": lambda body: gzip.compress(body, 6),
    "gzip 9": lambda body: gzip.compress(body, 9),
    "br 4": lambda body: brotli.compress(body, quality=4),
    "br 6": lambda body: brotli.compress(body, quality=6),
    "br 11": lambda body: brotli.compress(body, quality=11),
    "zstd 3": lambda body: zstd.compress(body, 3),
}


def pages() -> dict[str, bytes]:
    with tempfile.TemporaryDirectory() as folder, FakeApiServer() as api:
        app = create_app(make_settings(Path(folder), api.url))
        add_agent(app)
        client = app.test_client()
        bodies = {"login": client.get("/login").get_data()}
        AuthActions(app, client).login()
        bodies["home"] = client.get("/").get_data()
        for visitor in ("visitor_123", "visitor_large"):
            bodies[visitor] = client.get(f"/visitors/{visitor}").get_data()
        app.extensions["db_engine"].dispose()
    return bodies


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--repeat", type=int, default=50)
    repeat = parser.parse_args().repeat
    for name, body in pages().items():
        print(f"{name}: {len(body):,} bytes")
        for label, compress in CANDIDATES.items():
            times = []
            for _ in range(repeat):
                started = time.process_time()
                size = len(compress(body))
                times.append(time.process_time() - started)
            print(f"  {label:7} {statistics.median(times) * 1000:6.2f} ms  {size:8,} bytes ({size / len(body):.0%})")


if __name__ == "__main__":
    main()
