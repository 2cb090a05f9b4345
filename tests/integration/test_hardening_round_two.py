"""Issue 13, hardening round two: one regression test per finding of the penetration test.

SSRF tests never send a packet beyond loopback: host names are mapped by a stubbed
resolver, and opening any socket during the test fails it.
"""
from __future__ import annotations

import base64
import csv
import io
import socket
import statistics
import threading
import time
from urllib.parse import quote, urlsplit

import pytest
import requests
from sqlalchemy import select

import dashboard.addresses
import dashboard.models
from dashboard import create_app
from dashboard.audit import AuditRow, csv_lines
from dashboard.extensions import db
from dashboard.formatting import neutralise_cell
from dashboard.models import Agent, Site
from dashboard.visitors.share import EXPORT_COLUMNS, timeline_csv
from tests.integration.test_admin_agents import set_password_link
from tests.conftest import AGENT_EMAIL, AuthActions, LiveServer, add_agent, csrf_token_from, make_settings
from tests.support.accounts import ADMIN_EMAIL, ADMIN_PASSWORD, add_site, logged_in_client, make_admin, post
from tests.support.scripted_server import Recorded, Reply, ScriptedServer, json_reply
from tests.support.sockets import closed_port

WRONG = "not the password at all"
SITE_KEY = "pm_" + "3a" * 30 + "9f1c"


def sites_in_db(app) -> dict[str, Site]:
    with app.app_context():
        return {site.slug: site for site in db.session.scalars(select(Site))}


@pytest.fixture
def admin(app):
    make_admin(app)
    return logged_in_client(app, ADMIN_EMAIL, ADMIN_PASSWORD)


# -- 1. concurrent logins ---------------------------------------------------------------------


def parallel_logins(url: str, emails: list[str]) -> list[int]:
    """One wrong-password POST per e-mail, all released at the same moment; their statuses."""
    sessions = []
    for _ in emails:
        session = requests.Session()
        token = csrf_token_from(session.get(f"{url}/login", timeout=10).text)
        sessions.append((session, token))
    start = threading.Barrier(len(emails))
    statuses: list[int] = []

    def attempt(session: requests.Session, token: str, email: str) -> None:
        start.wait()
        response = session.post(f"{url}/login", data={"email": email, "password": WRONG, "csrf_token": token}, timeout=30)
        statuses.append(response.status_code)

    threads = [threading.Thread(target=attempt, args=(*pair, email)) for pair, email in zip(sessions, emails)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    for session, _ in sessions:
        session.close()
    return sorted(statuses)


@pytest.fixture(params=["memory", "redis"])
def limiter_storage(request):
    """Where the limiter counts: this process's memory, or a real Redis on a loopback port
    (emptied first: counts must not carry over from another test)."""
    if request.param == "memory":
        return None
    import redis

    url = request.getfixturevalue("redis_server_url")
    redis.Redis.from_url(url).flushdb()
    return url


@pytest.mark.parametrize("spread", ["one account", "many accounts from one address"])
def test_concurrent_logins_cannot_get_around_the_throttle(tmp_path, fake_api, limiter_storage, spread):
    settings = make_settings(
        tmp_path, fake_api.url, redis_url=limiter_storage, login_limit_per_account="5 per 15 minutes", login_limit_per_address="5 per 15 minutes"
    )
    app = create_app(settings)
    add_agent(app)
    emails = [AGENT_EMAIL] * 25 if spread == "one account" else [f"guess{n}@example.com" for n in range(25)]
    with LiveServer(app) as server:
        statuses = parallel_logins(server.url, emails)
    app.extensions["db_engine"].dispose()
    # Exactly the limit was evaluated (400: wrong password); every other attempt got 429.
    assert statuses == [400] * 5 + [429] * 20


# -- 2. timing ------------------------------------------------------------------------------


def test_login_timing_does_not_tell_known_emails(tmp_path, fake_api, monkeypatch):
    # A real cost (the suite's hashes are cheap), so that a skipped hash shows in the times.
    from werkzeug.security import generate_password_hash

    monkeypatch.setattr(dashboard.models, "generate_password_hash", lambda password: generate_password_hash(password, "pbkdf2:sha256:200000"))
    app = create_app(make_settings(tmp_path, fake_api.url, login_limit_per_account="20 per 15 minutes", login_limit_per_address="100 per 15 minutes"))
    add_agent(app)
    auth = AuthActions(app, app.test_client())

    def timed(email: str):
        started = time.perf_counter()
        response = auth.login(email=email, password=WRONG)
        return time.perf_counter() - started, response

    auth.login(email="warm-up@example.com", password=WRONG)  # makes the dummy hash once
    # Interleaved, so that the machine's speed drifting during the test falls on both alike.
    known, unknown = [], []
    for n in range(7):
        known.append(timed(AGENT_EMAIL))
        unknown.append(timed(f"nobody{n}@example.com"))
    known_median = statistics.median(seconds for seconds, _ in known)
    unknown_median = statistics.median(seconds for seconds, _ in unknown)
    assert unknown_median > 0.6 * known_median, (known_median, unknown_median)
    # Nothing else tells them apart either: the same status, message and headers.
    (_, one), (_, other) = known[0], unknown[0]
    assert one.status_code == other.status_code == 400
    assert "Wrong e-mail or password." in one.text and "Wrong e-mail or password." in other.text
    assert sorted(one.headers.keys()) == sorted(other.headers.keys())
    app.extensions["db_engine"].dispose()


# -- 3. SSRF through a site's address ------------------------------------------------------------

STUB_HOSTS = {
    "localhost": ["127.0.0.1", "::1"],
    "metadata.test": ["169.254.169.254"],
    "intranet.test": ["10.0.0.1"],
    "mixed.test": ["198.51.100.200", "8.8.8.8", "10.0.0.2"],
    "pm.test": ["8.8.8.8"],
}


@pytest.fixture
def stub_dns(monkeypatch):
    """Resolve test names from a table (mutable: a test can rebind a name), and fail the test if
    anything opens a connection beyond loopback."""
    table = {name: list(addresses) for name, addresses in STUB_HOSTS.items()}

    def resolve(host: str, port: int) -> list:
        if host not in table:
            raise socket.gaierror(socket.EAI_NONAME, "unknown test host")
        return [(socket.AF_INET6 if ":" in a else socket.AF_INET, socket.SOCK_STREAM, 6, "", (a, port)) for a in table[host]]

    real_connect = socket.socket.connect

    def connect(sock, address):
        assert str(address[0]) in {"127.0.0.1", "::1"}, f"a connection to {address} was opened"
        return real_connect(sock, address)

    monkeypatch.setattr(dashboard.addresses, "system_resolver", resolve)
    monkeypatch.setattr(socket.socket, "connect", connect)
    return table


@pytest.fixture
def strict_app(tmp_path, fake_api):
    """The app as deployed: no private addresses allowed (but the environment's own site)."""
    app = create_app(make_settings(tmp_path, fake_api.url, postmetric_allowed_hosts=()))
    yield app
    app.extensions["db_engine"].dispose()


@pytest.fixture
def strict_admin(strict_app):
    make_admin(strict_app)
    return logged_in_client(strict_app, ADMIN_EMAIL, ADMIN_PASSWORD)


@pytest.mark.parametrize(
    "base_url",
    [
        "http://localhost:5000",
        "http://0x7f000001:5000",
        "http://2130706433",
        "http://127.1",
        "http://[::1]:5000",
        "http://[::ffff:127.0.0.1]",
        "http://169.254.169.254/latest",
        "http://metadata.test",
        "http://intranet.test:8080",
        "http://192.168.1.10",
        "https://mixed.test",
        "http://0.0.0.0:22",
    ],
)
def test_ssrf_site_addresses_that_lead_inside_are_refused_at_save(strict_app, strict_admin, stub_dns, base_url):
    response = post(strict_admin, "/admin/sites", {"name": "Probe", "base_url": base_url, "api_key": SITE_KEY})
    assert response.status_code == 400 and "This base URL cannot be used" in response.text
    assert sites_in_db(strict_app) == {}


@pytest.mark.parametrize(
    "base_url,message",
    [
        ("http://user:secret@pm.test", "user name or password"),
        ("ftp://pm.test", "http:// or https://"),
        ("http://pm.test:99999", "not a valid URL"),
    ],
)
def test_ssrf_only_plain_http_urls_are_accepted(strict_app, strict_admin, stub_dns, base_url, message):
    response = post(strict_admin, "/admin/sites", {"name": "Probe", "base_url": base_url, "api_key": SITE_KEY})
    assert response.status_code == 400 and message in response.text


def test_ssrf_an_operator_may_allow_private_hosts(tmp_path, fake_api, stub_dns):
    allowances = ({"postmetric_allowed_hosts": ("intranet.test",)}, {"postmetric_allowed_hosts": ("10.0.0.0/8",)}, {"allow_private_upstreams": True})
    for n, changes in enumerate(allowances):
        (tmp_path / str(n)).mkdir()
        app = create_app(make_settings(tmp_path / str(n), fake_api.url, **{"postmetric_allowed_hosts": (), **changes}))
        make_admin(app)
        admin = logged_in_client(app, ADMIN_EMAIL, ADMIN_PASSWORD)
        response = post(admin, "/admin/sites", {"name": "Intranet", "base_url": "http://intranet.test:8080", "api_key": SITE_KEY})
        assert response.status_code == 303, changes
        app.extensions["db_engine"].dispose()


def test_ssrf_is_checked_again_at_connect_time(strict_app, strict_admin, stub_dns):
    """DNS rebinding: a name that was public when saved leads inside later."""
    saved = post(strict_admin, "/admin/sites", {"name": "Shop", "base_url": "https://pm.test", "api_key": SITE_KEY})
    assert saved.status_code == 303
    stub_dns["pm.test"] = ["169.254.169.254"]
    tested = post(strict_admin, "/admin/sites/shop/test", headers={"HX-Request": "true", "HX-Target": "connection-result"})
    assert tested.status_code == 200
    assert "Refused: the address is not allowed" in tested.text and "169.254.169.254" in tested.text
    page = strict_admin.get("/visitors/visitor_123?site=shop")
    assert page.status_code == 502 and "address_refused" in page.text


def test_ssrf_redirects_are_never_followed(app, admin):
    with ScriptedServer() as target, ScriptedServer(lambda _: Reply(302, headers={"Location": target.url + "/api/v1/visitor"})) as redirecting:
        add_site(app, "hop", "Hop", redirecting.url, SITE_KEY)
        tested = post(admin, "/admin/sites/hop/test", headers={"HX-Request": "true", "HX-Target": "connection-result"})
        assert "Not found: no PostMetric API at this base URL" in tested.text
        assert target.requests == []


@pytest.mark.parametrize(
    "reply,category",
    [
        (json_reply(500, {"status": "error", "error": {"code": 500, "message": "db password=hunter2 at 10.9.8.7"}}), "Not PostMetric"),
        (Reply(200, body=b'{"error": "internal admin console, user root hunter2"}'), "Not PostMetric"),
        (Reply(404, body=b"<h1>hunter2 not found</h1>", content_type="text/html"), "Not found"),
        (json_reply(401, {"status": "error", "error": {"code": 401, "message": "hunter2 bad key"}}), "PostMetric refused the key"),
    ],
)
def test_ssrf_test_connection_reports_a_category_and_never_echoes_a_body(app, admin, reply, category):
    with ScriptedServer(lambda _: reply) as server:
        add_site(app, "probe", "Probe", server.url, SITE_KEY)
        tested = post(admin, "/admin/sites/probe/test", headers={"HX-Request": "true", "HX-Target": "connection-result"})
    assert category in tested.text
    assert "hunter2" not in tested.text and "10.9.8.7" not in tested.text


def test_ssrf_test_connection_tells_refused_and_timed_out_apart(app, admin):
    add_site(app, "closed", "Closed", f"http://127.0.0.1:{closed_port()}", SITE_KEY)
    tested = post(admin, "/admin/sites/closed/test", headers={"HX-Request": "true", "HX-Target": "connection-result"})
    assert "Refused: PostMetric could not be reached" in tested.text
    with ScriptedServer(lambda _: Reply(200, delay=3.0)) as slow:
        add_site(app, "slow", "Slow", slow.url, SITE_KEY)
        tested = post(admin, "/admin/sites/slow/test", headers={"HX-Request": "true", "HX-Target": "connection-result"})
    assert "Timed out" in tested.text


# -- 4. the stored key reaching a browser ------------------------------------------------------


def test_changing_only_the_path_of_a_base_url_needs_the_key_again(app, admin, fake_api):
    add_site(app, "shop", "Shop", fake_api.url, SITE_KEY)
    moved = post(admin, "/admin/sites/shop/edit", {"name": "Shop", "base_url": fake_api.url + "/reflect", "api_key": ""})
    assert moved.status_code == 400 and "enter the site&#39;s API key again" in moved.text
    assert sites_in_db(app)["shop"].base_url == fake_api.url
    # The same address written differently is no move.
    same = post(admin, "/admin/sites/shop/edit", {"name": "Renamed", "base_url": fake_api.url.upper().replace("HTTP", "http") + "/", "api_key": ""})
    assert same.status_code == 303


def reflections(key: str) -> list[str]:
    return [
        key,
        key[::-1],
        f"{key[:30]} … {key[30:]}",
        " ".join(key[i : i + 9] for i in range(0, len(key), 9)),
        quote(key, safe=""),
        base64.b64encode(f"Bearer {key}".encode()).decode(),
        base64.urlsafe_b64encode(f"Authorization: Bearer {key}".encode()).decode(),
        key.upper(),
    ]


@pytest.mark.parametrize("form", range(len(reflections(SITE_KEY))))
def test_a_reflected_key_never_reaches_the_browser(app, admin, form):
    def reflect(request: Recorded) -> Reply:
        key = request.headers.get("Authorization", "").removeprefix("Bearer ")
        return json_reply(500, {"status": "error", "error": {"code": 500, "message": f"bad: {reflections(key)[form]}"}})

    with ScriptedServer(reflect) as server:
        add_site(app, "mirror", "Mirror", server.url, SITE_KEY)
        page = admin.get("/visitors/visitor_123?site=mirror").text
        tested = post(admin, "/admin/sites/mirror/test", headers={"HX-Request": "true", "HX-Target": "connection-result"}).text
    compact = SITE_KEY[3:]
    for shown in (page, tested):
        for leaked in reflections(SITE_KEY):
            assert leaked not in shown
        assert compact[:12] not in shown and compact[::-1][:12] not in shown


# -- 5. one bad base URL ----------------------------------------------------------------------


@pytest.mark.parametrize("base_url", ["http://127.0.0.1:9/api?x=1", "http://127.0.0.1:9/api#top", "http://127.0.0.1:9/api?"])
def test_a_base_url_with_a_query_or_fragment_is_refused(app, admin, base_url):
    response = post(admin, "/admin/sites", {"name": "Odd", "base_url": base_url, "api_key": SITE_KEY})
    assert response.status_code == 400 and "query" in response.text


def test_a_stored_base_url_with_a_query_breaks_nothing_else(app, admin):
    """Saved before the form refused it: look-ups, exports and its own test still answer."""
    add_site(app, "odd", "Odd", "http://127.0.0.1:9/api?x=1", SITE_KEY)
    assert admin.get("/visitors/visitor_123").status_code == 200
    assert admin.get("/visitor/export?visitorId=visitor_123&format=csv").status_code == 200
    tested = post(admin, "/admin/sites/odd/test", headers={"HX-Request": "true", "HX-Target": "connection-result"})
    assert tested.status_code == 200 and "Refused: the address is not allowed" in tested.text


# -- 6. the last 500s -------------------------------------------------------------------------


@pytest.mark.parametrize("url", ["/?visitorId=http://[x", "/visitor?search=1&visitorId=http://[x", "/?visitorId=//[::1"])
def test_an_unreadable_link_in_a_search_is_a_400_not_a_500(logged_in, url):
    response = logged_in.get(url)
    assert response.status_code == 400 and "could not be read" in response.text
    assert 'id="search"' in response.text or "Look up" in response.text


@pytest.mark.parametrize("header", ["HX-Boosted", "HX-History-Restore-Request"])
def test_a_boosted_or_restored_test_connection_is_a_whole_page_not_a_500(app, admin, header):
    response = post(admin, "/admin/sites/default/test", headers={"HX-Request": "true", header: "true", "HX-Target": "connection-result"})
    assert response.status_code == 200
    assert "<html" in response.text and "Connected" in response.text


# -- 7. exports ------------------------------------------------------------------------------

DANGEROUS = ["=1+1", "+1", "-1", "@SUM(A1)", "\t=1", "\r=1", "\n=1", "\x00=1", "＝1", "＋1", "－1", "＠1", "\xa0=1", " =1", "\u3000@1"]


@pytest.mark.parametrize("cell", DANGEROUS)
def test_exports_protect_every_cell_a_spreadsheet_could_evaluate(cell):
    assert neutralise_cell(cell) == "'" + cell
    # Both exports go through that one rule.
    row = {column: cell for column in EXPORT_COLUMNS}
    visitor_csv = list(csv.reader(io.StringIO(timeline_csv([row]).decode("utf-8-sig"), newline="")))
    assert visitor_csv[1] == ["'" + cell] * len(EXPORT_COLUMNS)
    from datetime import datetime, timezone

    audit = "".join(csv_lines([AuditRow(datetime(2024, 1, 20, tzinfo=timezone.utc), cell, cell, cell, cell, cell, cell)]))
    audit_rows = list(csv.reader(io.StringIO(audit, newline="")))
    assert audit_rows[1][1:] == ["'" + cell] * 6


@pytest.mark.parametrize("cell", ["visitor_123", "Checkout – step 2", "/cart?x=1", "2024-01-20", "é=1", "a-b"])
def test_exports_leave_ordinary_cells_alone(cell):
    assert neutralise_cell(cell) == cell


# -- 8. set-password links ----------------------------------------------------------------------


def test_disabling_an_agent_voids_their_set_password_links(app, admin):
    response = post(admin, "/admin/agents", {"email": "new@example.com"})
    path = urlsplit(set_password_link(response.text)).path
    with app.app_context():
        new_id = db.session.scalars(select(Agent.id).where(Agent.email == "new@example.com")).one()
    assert post(admin, f"/admin/agents/{new_id}/disable").status_code == 303
    assert post(admin, f"/admin/agents/{new_id}/enable").status_code == 303
    stranger = app.test_client()
    page = stranger.get(path)
    assert page.status_code == 400 and "Ask an admin for a new one" in page.text
    token = csrf_token_from(stranger.get("/login").text)
    chosen = stranger.post(path, data={"csrf_token": token, "password": "a brand new password", "confirm": "a brand new password"})
    assert chosen.status_code == 400
    with app.app_context():
        assert not db.session.get(Agent, new_id).check_password("a brand new password")


# -- 9. the per-address limit -------------------------------------------------------------------


def test_the_per_address_login_limit_is_a_documented_setting(tmp_path, fake_api):
    from dashboard.config import PROJECT_ROOT, Settings

    settings = Settings.from_env({"LOGIN_LIMIT_PER_ADDRESS": "2 per 15 minutes"}, mode="test")
    app = create_app(make_settings(tmp_path, fake_api.url, login_limit_per_address=settings.login_limit_per_address))
    auth = AuthActions(app, app.test_client())
    assert [auth.login(email=f"g{n}@example.com", password=WRONG).status_code for n in range(3)] == [400, 400, 429]
    app.extensions["db_engine"].dispose()
    readme = (PROJECT_ROOT / "README.md").read_text()
    documented = readme[readme.index("LOGIN_LIMIT_PER_ADDRESS") :][:1500]
    assert "office" in documented
