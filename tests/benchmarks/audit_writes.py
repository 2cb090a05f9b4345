"""How much the audit trail adds to a look-up, and how it holds up with writers at once.

    .venv/bin/python -m tests.benchmarks.audit_writes

A look-up served from the cache is timed with the audit write and without it (the write
replaced by nothing); then the write alone, and 8 threads writing at the same moment.
"""
from __future__ import annotations

import statistics
import tempfile
import threading
import time
from pathlib import Path

from dashboard import audit, create_app
from dashboard.demo import FakeApiServer
from tests.conftest import AuthActions, add_agent, make_settings

ROUNDS = 200


def median_ms(samples: list[float]) -> str:
    ordered = sorted(samples)
    return f"median {statistics.median(ordered) * 1000:.2f} ms, p95 {ordered[int(len(ordered) * 0.95)] * 1000:.2f} ms"


def time_lookups(client, rounds: int) -> list[float]:
    samples = []
    for n in range(rounds):
        started = time.perf_counter()
        response = client.get(f"/visitors/visitor_unknown?ticket=B-{n}")
        samples.append(time.perf_counter() - started)
        assert response.status_code == 200
    return samples


def main() -> None:
    with tempfile.TemporaryDirectory() as folder, FakeApiServer() as api:
        app = create_app(make_settings(Path(folder), api.url))
        add_agent(app)
        client = app.test_client()
        AuthActions(app, client).login()
        time_lookups(client, 20)  # warm the cache and the code paths
        with_audit = time_lookups(client, ROUNDS)
        real = audit.record_event
        audit.record_event = lambda *args, **kwargs: None
        try:
            without_audit = time_lookups(client, ROUNDS)
        finally:
            audit.record_event = real
        print(f"look-up from the cache, with the audit write:    {median_ms(with_audit)}")
        print(f"look-up from the cache, without the audit write: {median_ms(without_audit)}")

        engine = app.extensions["db_engine"]
        writes = []
        for n in range(ROUNDS):
            started = time.perf_counter()
            audit.record_event(engine, agent_id=None, site="default", visitor_id=f"w{n}", action="lookup", outcome="ok")
            writes.append(time.perf_counter() - started)
        print(f"one audit write alone:                           {median_ms(writes)}")

        threads, per_thread = 8, 25
        barrier = threading.Barrier(threads)
        concurrent: list[float] = []

        def writer(t: int) -> None:
            barrier.wait()
            for n in range(per_thread):
                started = time.perf_counter()
                audit.record_event(engine, agent_id=None, site="default", visitor_id=f"t{t}-{n}", action="lookup", outcome="ok")
                concurrent.append(time.perf_counter() - started)

        workers = [threading.Thread(target=writer, args=(t,)) for t in range(threads)]
        started = time.perf_counter()
        for worker in workers:
            worker.start()
        for worker in workers:
            worker.join()
        total = time.perf_counter() - started
        print(f"{threads} threads x {per_thread} writes at once:           {median_ms(concurrent)}; {threads * per_thread} rows in {total:.2f} s")
        engine.dispose()


if __name__ == "__main__":
    main()
