"""Sites: the environment's default site, keys encrypted at rest and masked, admin pages,
and "Test connection" against the stand-in."""
from __future__ import annotations

from pathlib import Path

import pytest
from sqlalchemy import select

from cryptography.fernet import Fernet

from dashboard import create_app
from dashboard.demo import DEMO_API_KEY, FakeApiServer
from dashboard.encryption import KeyBox, derived_key
from dashboard.extensions import db
from dashboard.models import Site
from tests.conftest import make_settings
from tests.support.sockets import closed_port
from tests.support.html import one, soup, text_of
from tests.support.accounts import (
    ADMIN_EMAIL,
    ADMIN_PASSWORD,
    add_site,
    csrf_of,
    logged_in_client,
    make_admin,
    post,
)

SHOP_KEY = "pm_" + "5e" * 31 + "c0de"
HTMX = {"HX-Request": "true"}


@pytest.fixture
def admin(app):
    make_admin(app)
    return logged_in_client(app, ADMIN_EMAIL, ADMIN_PASSWORD)


def sites_in_db(app) -> dict[str, Site]:
    with app.app_context():
        return {site.slug: site for site in db.session.scalars(select(Site))}


def database_bytes(settings) -> bytes:
    """Everything SQLite holds on disk (the database file and its write-ahead log), or on
    PostgreSQL every value of every table."""
    if not settings.database_url.startswith("sqlite"):
        from sqlalchemy import MetaData, create_engine

        engine = create_engine(settings.database_url)
        try:
            metadata = MetaData()
            metadata.reflect(engine)
            with engine.connect() as connection:
                rows = [row for table in metadata.sorted_tables for row in connection.execute(table.select())]
        finally:
            engine.dispose()
        return "\n".join(map(repr, rows)).encode()
    path = Path(settings.database_url.removeprefix("sqlite:///"))
    return b"".join(p.read_bytes() for p in (path, Path(f"{path}-wal")) if p.exists())


# -- the environment's site ----------------------------------------------------------------


def test_the_environment_defines_the_default_site_in_memory_not_in_the_database(app, admin, fake_api):
    """The environment's site is this instance's configuration: look-ups use it, the admin
    page lists it read-only, and no row holds it for another instance to pick up."""
    [ref] = app.extensions["visitor_service"].sites()
    assert (ref.slug, ref.base_url, ref.api_key) == ("default", fake_api.url, DEMO_API_KEY)
    assert sites_in_db(app) == {}
    row = one(soup(admin.get("/admin/sites").text), "#site-default")
    assert "this server's environment" in text_of(row) and f"…{DEMO_API_KEY[-4:]}" in text_of(row)
    assert [button.get_text(strip=True) for button in row.select("a, button")] == ["Test connection"]


def test_instances_with_different_environments_keep_their_own_default_site(tmp_path, fake_api):
    """Two instances on one database, started with different environments: the second
    start changes nothing for the first (it used to rewrite a shared row)."""
    first = create_app(make_settings(tmp_path, fake_api.url))
    second = create_app(make_settings(tmp_path, "http://127.0.0.1:9", api_key="pm_" + "9" * 64))
    try:
        first.extensions["site_directory"].invalidate()
        [first_ref] = first.extensions["visitor_service"].sites()
        [second_ref] = second.extensions["visitor_service"].sites()
        assert (first_ref.base_url, first_ref.api_key) == (fake_api.url, DEMO_API_KEY)
        assert (second_ref.base_url, second_ref.api_key[-4:]) == ("http://127.0.0.1:9", "9999")
        assert sites_in_db(second) == {}
    finally:
        for app in (first, second):
            app.extensions["db_engine"].dispose()


def test_an_admins_site_never_takes_the_environments_name(app, admin, fake_api):
    post(admin, "/admin/sites", {"name": "Default", "base_url": fake_api.url, "api_key": SHOP_KEY})
    assert set(sites_in_db(app)) == {"default-2"}
    assert [ref.slug for ref in app.extensions["visitor_service"].sites()] == ["default", "default-2"]


def test_keys_survive_a_restart_and_move_to_a_dedicated_encryption_key(tmp_path, fake_api):
    app = create_app(make_settings(tmp_path, fake_api.url))
    add_site(app, "shop", "Shop", fake_api.url, SHOP_KEY)
    app.extensions["db_engine"].dispose()
    key = Fernet.generate_key().decode()
    restarted = create_app(make_settings(tmp_path, fake_api.url, encryption_key=key))
    refs = {ref.slug: ref for ref in restarted.extensions["visitor_service"].sites()}
    assert refs["shop"].api_key == SHOP_KEY
    stored = sites_in_db(restarted)["shop"].api_key_encrypted
    Fernet(key).decrypt(stored.encode())  # re-encrypted under the dedicated key at start-up
    restarted.extensions["db_engine"].dispose()


def test_a_key_that_cannot_be_decrypted_is_reported_not_used(tmp_path, fake_api):
    app = create_app(make_settings(tmp_path, fake_api.url))
    add_site(app, "shop", "Shop", fake_api.url, SHOP_KEY)
    app.extensions["db_engine"].dispose()
    other_secret = create_app(make_settings(tmp_path, fake_api.url, secret_key="another-secret-key-0123456789"))
    assert [ref.slug for ref in other_secret.extensions["visitor_service"].sites()] == ["default"]
    make_admin(other_secret)
    html = logged_in_client(other_secret, ADMIN_EMAIL, ADMIN_PASSWORD).get("/admin/sites").text
    assert html.count("cannot be read: enter it again") == 1
    other_secret.extensions["db_engine"].dispose()


# -- encryption and masking ----------------------------------------------------------------


def test_the_database_file_does_not_contain_any_key(app, admin, settings, fake_api):
    response = post(admin, "/admin/sites", {"name": "Shop", "base_url": fake_api.url, "api_key": SHOP_KEY})
    assert response.status_code == 303
    app.extensions["db_engine"].dispose()  # let SQLite write everything out
    stored = database_bytes(settings)
    assert b"Shop" in stored  # the file is readable: the test would see a plain key
    for key in (SHOP_KEY, DEMO_API_KEY):
        assert key.encode() not in stored
        assert key[3:35].encode() not in stored
    ref = {ref.slug: ref for ref in app.extensions["visitor_service"].sites()}["shop"]
    assert ref.api_key == SHOP_KEY


def test_encryption_uses_a_key_derived_from_the_secret_not_the_secret(settings):
    box = KeyBox.from_settings(settings)
    token = box.encrypt(SHOP_KEY)
    assert token != box.encrypt(SHOP_KEY)  # a fresh IV every time
    assert box.decrypt(token) == SHOP_KEY
    assert derived_key(settings.secret_key) != derived_key(settings.secret_key + "x")
    assert settings.secret_key.encode() not in derived_key(settings.secret_key)


def all_admin_pages(admin) -> list[str]:
    pages = ["/admin/sites", "/admin/sites/default/edit", "/admin/sites/shop/edit", "/admin/agents", "/admin/audit"]
    bodies = [admin.get(url).text for url in pages]
    bodies += [admin.get(url, headers={**HTMX, "HX-Target": "main"}).text for url in pages]
    for slug in ("default", "shop"):
        bodies.append(post(admin, f"/admin/sites/{slug}/test", headers={**HTMX, "X-CSRFToken": "x"}).text)
        bodies.append(post(admin, f"/admin/sites/{slug}/test").text)
    bodies.append(post(admin, "/admin/sites/shop/edit", {"name": "", "base_url": "ftp://x", "api_key": "pm_" + "7" * 64}).text)
    return bodies


def test_admin_pages_show_only_the_last_four_characters(app, admin, fake_api):
    add_site(app, "shop", "Shop", fake_api.url, SHOP_KEY)
    html = admin.get("/admin/sites").text
    assert "…c0de" in html and f"…{DEMO_API_KEY[-4:]}" in html
    for body in all_admin_pages(admin):
        for key in (SHOP_KEY, DEMO_API_KEY, "pm_" + "7" * 64):
            assert key[:-4] not in body and key[-12:] not in body


def test_the_edit_form_never_fills_in_the_key(app, admin, fake_api):
    add_site(app, "shop", "Shop", fake_api.url, SHOP_KEY)
    html = admin.get("/admin/sites/shop/edit").text
    assert one(soup(html), 'input[name="api_key"]').get("value", "") == ""


# -- managing sites ------------------------------------------------------------------------


def test_add_edit_replace_key_and_delete_a_site(app, admin, fake_api):
    post(admin, "/admin/sites", {"name": "Web Shop (EU)", "base_url": fake_api.url + "/", "api_key": SHOP_KEY})
    shop = sites_in_db(app)["web-shop-eu"]
    assert shop.name == "Web Shop (EU)" and shop.base_url == fake_api.url and shop.api_key_last4 == "c0de"
    assert [ref.slug for ref in app.extensions["visitor_service"].sites()] == ["default", "web-shop-eu"]

    # Renaming keeps the key when the key field is left empty.
    post(admin, "/admin/sites/web-shop-eu/edit", {"name": "Shop", "base_url": fake_api.url, "api_key": ""})
    ref = {r.slug: r for r in app.extensions["visitor_service"].sites()}["web-shop-eu"]
    assert ref.name == "Shop" and ref.api_key == SHOP_KEY
    # A new key replaces the old one.
    post(admin, "/admin/sites/web-shop-eu/edit", {"name": "Shop", "base_url": fake_api.url, "api_key": "pm_" + "a" * 60 + "beef"})
    ref = {r.slug: r for r in app.extensions["visitor_service"].sites()}["web-shop-eu"]
    assert ref.api_key.endswith("beef") and sites_in_db(app)["web-shop-eu"].api_key_last4 == "beef"

    assert post(admin, "/admin/sites/web-shop-eu/delete").status_code == 303
    assert "web-shop-eu" not in sites_in_db(app)
    assert [ref.slug for ref in app.extensions["visitor_service"].sites()] == ["default"]


def test_moving_a_site_to_another_host_needs_the_key_again(app, admin, fake_api):
    """Otherwise an admin could send the stored key to a host of their own."""
    add_site(app, "shop", "Shop", fake_api.url, DEMO_API_KEY)
    with FakeApiServer() as elsewhere:
        refused = post(admin, "/admin/sites/shop/edit", {"name": "Shop", "base_url": elsewhere.url, "api_key": ""})
        assert refused.status_code == 400
        assert "enter the site's API key again" in text_of(soup(refused))
        assert sites_in_db(app)["shop"].base_url == fake_api.url
        # Test connection and look-ups still go where the key was entered for.
        admin.get("/visitors/visitor_123?site=shop")
        assert elsewhere.stats.calls == 0
        # With the key entered again the move is made.
        moved = post(admin, "/admin/sites/shop/edit", {"name": "Shop", "base_url": elsewhere.url, "api_key": DEMO_API_KEY})
        assert moved.status_code == 303 and sites_in_db(app)["shop"].base_url == elsewhere.url
        # Another path on the same host is a move too (issue 13, finding 4).
        same_host = post(admin, "/admin/sites/shop/edit", {"name": "Shop", "base_url": elsewhere.url + "/analytics", "api_key": ""})
        assert same_host.status_code == 400 and sites_in_db(app)["shop"].base_url == elsewhere.url


def test_a_second_site_with_the_same_name_gets_its_own_slug(app, admin, fake_api):
    for _ in range(2):
        post(admin, "/admin/sites", {"name": "Shop", "base_url": fake_api.url, "api_key": SHOP_KEY})
    assert {"shop", "shop-2"} <= set(sites_in_db(app))


@pytest.mark.parametrize(
    "fields,message",
    [
        ({"base_url": "ftp://files.example.com"}, "http:// or https://"),
        ({"base_url": "javascript:alert(1)"}, "http:// or https://"),
        ({"base_url": "example.com"}, "http:// or https://"),
        ({"api_key": ""}, "Enter the site's API key"),
        ({"api_key": "pm key with spaces"}, "does not look like"),
        ({"name": ""}, "Give the site a name"),
    ],
)
def test_invalid_sites_are_refused(app, admin, fields, message):
    data = {"name": "Shop", "base_url": "https://analytics.example.com", "api_key": SHOP_KEY, **fields}
    response = post(admin, "/admin/sites", data)
    assert response.status_code == 400 and message in text_of(soup(response))
    assert sites_in_db(app) == {}


def test_the_environments_site_cannot_be_edited_or_deleted_here(app, admin, fake_api):
    assert admin.get("/admin/sites/default/edit").status_code == 404
    assert post(admin, "/admin/sites/default/delete").status_code == 404
    assert [ref.base_url for ref in app.extensions["visitor_service"].sites()] == [fake_api.url]


# -- test connection -----------------------------------------------------------------------


def connection_result(admin, slug: str) -> tuple[str, str]:
    response = admin.post(
        f"/admin/sites/{slug}/test", headers={**HTMX, "HX-Target": f"connection-result-{slug}", "X-CSRFToken": csrf_of(admin)}
    )
    html = response.text
    assert response.status_code == 200 and "<html" not in html
    # The fragment is the result paragraph itself, which htmx swaps for the old one.
    [result] = soup(html).find_all(recursive=False)
    assert (result.name, result["id"]) == ("p", f"connection-result-{slug}")
    return result["data-verdict"], html


def test_test_connection_reports_success(admin, fake_api):
    verdict, html = connection_result(admin, "default")
    assert verdict == "ok" and "PostMetric accepted the key" in html
    assert fake_api.stats.calls == 1


def test_test_connection_reports_a_wrong_key(app, admin, fake_api):
    add_site(app, "shop", "Shop", fake_api.url, "pm_" + "0" * 64)
    verdict, html = connection_result(admin, "shop")
    assert verdict == "wrong_key" and "refused" in html and "replace the key" in html


def test_test_connection_reports_an_unreachable_host(app, admin):
    add_site(app, "gone", "Gone", f"http://127.0.0.1:{closed_port()}", SHOP_KEY)
    verdict, html = connection_result(admin, "gone")
    assert verdict == "unreachable" and "could not be reached" in html and "connect" in html.lower()


def test_test_connection_without_htmx_returns_the_page_with_the_result(admin):
    response = post(admin, "/admin/sites/default/test")
    html = response.text
    assert response.status_code == 200 and html.startswith("<!doctype html>")
    assert one(soup(html), "#connection-result-default")["data-verdict"] == "ok"
