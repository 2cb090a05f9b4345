"""Time parsing the 1,000-view answer (not part of `make test`).

    .venv/bin/python -m tests.benchmarks.parse_visitor [--repeat 7] [--number 200]

Builds visitor_large's success envelope as the bundled stand-in sends it and times
``parse_visitor_payload`` on it with timeit: ``repeat`` runs of ``number`` parses each,
reported per parse as the best run and the median run. It measures; it does not pass or
fail.
"""
from __future__ import annotations

import argparse
import json
import statistics
import timeit
from datetime import datetime, timezone

from dashboard.demo.data import LARGE_VISITOR_ID, build_visitor_payload
from dashboard.postmetric.models import parse_visitor_payload


def large_answer() -> bytes:
    """visitor_large's envelope, serialised as the stand-in does (compact, key order kept)."""
    data = build_visitor_payload(LARGE_VISITOR_ID, datetime.now(timezone.utc))
    return json.dumps({"status": "success", "data": data}, ensure_ascii=False, separators=(",", ":")).encode()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=7)
    parser.add_argument("--number", type=int, default=200)
    args = parser.parse_args()
    body = large_answer()
    visitor = parse_visitor_payload(body, LARGE_VISITOR_ID)
    runs = timeit.repeat(lambda: parse_visitor_payload(body, LARGE_VISITOR_ID), repeat=args.repeat, number=args.number)
    per_parse = [run / args.number * 1000 for run in runs]
    print(
        f"{LARGE_VISITOR_ID}: {len(body) / 1024:.0f} KB, {len(visitor.page_views)} page views, "
        f"{len(visitor.sessions)} sessions; parse best {min(per_parse):.3f} ms, "
        f"median {statistics.median(per_parse):.3f} ms ({args.repeat} runs of {args.number})"
    )


if __name__ == "__main__":
    main()
