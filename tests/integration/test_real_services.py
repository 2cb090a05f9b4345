"""The dashboard on the parts a team runs it on: PostgreSQL and Redis, real servers
started by the tests on free loopback ports."""
from __future__ import annotations

import redis

from dashboard import create_app
from tests.conftest import AuthActions, add_agent, make_settings
from tests.support.services import fresh_postgres_database


def test_a_lookup_on_postgresql_and_redis(tmp_path, fake_api, postgres_server_url, redis_server_url):
    database_url = fresh_postgres_database(postgres_server_url, "real_services_lookup")
    app = create_app(make_settings(tmp_path, fake_api.url, database_url=database_url, redis_url=redis_server_url))
    try:
        add_agent(app)
        client = app.test_client()
        auth = AuthActions(app, client)
        assert auth.login(password="wrong password!").status_code == 400
        # Login throttling keeps its counts in Redis, where every instance sees them.
        assert redis.Redis.from_url(redis_server_url).dbsize() > 0
        assert auth.login().status_code == 302
        page = client.get("/visitors/visitor_123")
        assert page.status_code == 200
        assert "visitor_123" in page.text
        # The look-up was audited in PostgreSQL.
        from sqlalchemy import text

        with app.extensions["db_engine"].connect() as connection:
            assert connection.execute(text("select count(*) from lookup_events")).scalar() >= 1
    finally:
        app.extensions["db_engine"].dispose()
