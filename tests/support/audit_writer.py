"""A second server process for the concurrency test: look-ups through the app, each
recorded in the audit trail of a SQLite file that another process writes at the same time.

    python -m tests.support.audit_writer DATABASE_FILE API_URL COUNT LABEL

It logs in, prints "ready", waits for a line on standard input (so that every process
starts writing at the same moment), makes COUNT look-ups and prints "done".
"""
from __future__ import annotations

import sys
import tempfile
from pathlib import Path

from dashboard import create_app
from tests.conftest import AuthActions, make_settings


def main(database_file: str, api_url: str, count: int, label: str) -> None:
    with tempfile.TemporaryDirectory() as instance:
        settings = make_settings(Path(instance), api_url, database_url=f"sqlite:///{database_file}")
        app = create_app(settings)
        client = app.test_client()
        assert AuthActions(app, client).login().status_code == 302
        print("ready", flush=True)
        sys.stdin.readline()
        for n in range(count):
            response = client.get(f"/visitors/visitor_unknown?ticket={label}-{n}")
            assert response.status_code == 200, response.status_code
        app.extensions["db_engine"].dispose()
    print("done", flush=True)


if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2], int(sys.argv[3]), sys.argv[4])
