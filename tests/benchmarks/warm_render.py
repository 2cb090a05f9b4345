"""Time a warm visitor page through the Flask test client (not part of `make test`).

    .venv/bin/python -m tests.benchmarks.warm_render [--repeat 7] [--number 50]

Serves the bundled stand-in on a free loopback port, logs an agent in, fetches each
visitor once (so the cache is warm) and then times ``number`` GETs of its page (and of
``?q=product`` and the filter fragment), ``repeat`` times, reporting the median and best
per request. It measures; it does not pass or fail.
"""
from __future__ import annotations

import argparse
import statistics
import tempfile
import timeit
from pathlib import Path

from dashboard import create_app
from dashboard.demo import FakeApiServer
from tests.conftest import AGENT_EMAIL, AGENT_PASSWORD, AuthActions, add_agent, make_settings

CASES = (
    ("visitor_123 page", "/visitors/visitor_123", {}),
    ("visitor_123 ?q=product", "/visitors/visitor_123?q=product", {}),
    ("visitor_large page", "/visitors/visitor_large", {}),
    ("visitor_large ?q=product", "/visitors/visitor_large?q=product", {}),
    ("visitor_large filter fragment", "/visitors/visitor_large?q=product", {"HX-Request": "true", "HX-Target": "timeline"}),
)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=7)
    parser.add_argument("--number", type=int, default=50)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp, FakeApiServer() as api:
        app = create_app(make_settings(Path(tmp), api.url))
        add_agent(app)
        client = app.test_client()
        assert AuthActions(app, client).login(AGENT_EMAIL, AGENT_PASSWORD).status_code == 302
        for name, url, headers in CASES:
            assert client.get(url, headers=headers).status_code == 200, name  # warms the cache
            runs = timeit.repeat(lambda: client.get(url, headers=headers), repeat=args.repeat, number=args.number)
            per = [run / args.number * 1000 for run in runs]
            print(f"{name:32} median {statistics.median(per):6.2f} ms  best {min(per):6.2f} ms")
        app.extensions["db_engine"].dispose()


if __name__ == "__main__":
    main()
