"""Where the settings for admins, sites and hardening lead (reading and checking them is
in test_config.py); the key box; the site list cache; the multi-site search's choice of
what to show."""
from __future__ import annotations

import pytest
from cryptography.fernet import Fernet

from dashboard import limiter_storage_uri
from dashboard.config import Settings
from dashboard.encryption import KeyBox, UnreadableSecret, derived_key
from dashboard.security import content_security_policy, secure_cookie

BASE = {"SECRET_KEY": "s" * 32}


def test_limits_are_kept_in_redis_when_it_is_configured():
    assert limiter_storage_uri(Settings.from_env(BASE)) == "memory://"
    assert limiter_storage_uri(Settings.from_env({**BASE, "REDIS_URL": "redis://cache:6379/1"})) == "redis://cache:6379/1"


def test_key_box_round_trip_and_refusal():
    box = KeyBox([derived_key("one secret key 0123456789")])
    token = box.encrypt("pm_secret")
    assert "pm_secret" not in token and box.decrypt(token) == "pm_secret"
    other = KeyBox([derived_key("another secret 0123456789")])
    with pytest.raises(UnreadableSecret):
        other.decrypt(token)
    with pytest.raises(UnreadableSecret):
        box.decrypt(token[:-4] + "AAAA")  # altered


def test_a_dedicated_key_takes_over_and_old_tokens_stay_readable():
    settings = Settings.from_env(BASE)
    old_token = KeyBox.from_settings(settings).encrypt("pm_old")
    dedicated = Fernet.generate_key().decode()
    box = KeyBox.from_settings(settings.with_changes(encryption_key=dedicated))
    assert box.decrypt(old_token) == "pm_old" and not box.is_current(old_token)
    rotated = box.rotate(old_token)
    assert box.is_current(rotated) and Fernet(dedicated).decrypt(rotated.encode()) == b"pm_old"
    assert box.is_current(box.encrypt("pm_new"))


def test_csp_and_cookie_helpers():
    policy = content_security_policy("'none'")
    assert "script-src 'self'" in policy and "unsafe" not in policy and policy.endswith("frame-ancestors 'none'")
    assert secure_cookie("session=x; HttpOnly; Path=/") == "session=x; HttpOnly; Path=/; Secure"
    assert secure_cookie("session=x; Secure; HttpOnly") == "session=x; Secure; HttpOnly"


def test_the_site_list_is_read_at_most_every_few_seconds(tmp_path):
    from dashboard.db import make_engine, migrate
    from dashboard.models import Site
    from dashboard.sites import SiteDirectory, store_key
    from sqlalchemy.orm import sessionmaker

    engine = make_engine(f"sqlite:///{tmp_path / 'sites.sqlite3'}")
    migrate(engine)
    factory = sessionmaker(engine)
    box = KeyBox([derived_key("a secret key 0123456789")])
    now = [0.0]
    directory = SiteDirectory(factory, box, ttl=5.0, clock=lambda: now[0])
    assert directory.sites() == []

    with factory() as session:
        site = Site(slug="shop", name="Shop", base_url="https://shop.example.com")
        store_key(site, "pm_" + "1" * 64, box)
        session.add(site)
        session.commit()
    assert directory.sites() == []  # cached
    now[0] = 5.0
    assert [s.slug for s in directory.sites()] == ["shop"]  # read again after the ttl
    with factory() as session:
        session.query(Site).delete()
        session.commit()
    directory.invalidate()  # an admin's change in this process: seen at once
    assert directory.sites() == []
    engine.dispose()


def lookup(slug: str, *, known: bool | None):
    """A Lookup: known True/False for an answer, None for a failure."""
    from dashboard.lookup import Lookup
    from dashboard.postmetric.errors import ServerError
    from dashboard.postmetric.models import Visitor
    from dashboard.sites import SiteRef

    site = SiteRef(slug, slug.title(), f"https://{slug}.example.com", "pm_x")
    if known is None:
        return Lookup(site, None, None, False, False, ServerError())
    visitor = Visitor.model_validate({"visitorId": "v", "sessionCount": int(known), "pageViewCount": 0, "sessions": [], "pageViews": []})
    return Lookup(site, visitor, None, False, False, None)


def test_what_a_search_of_every_site_shows():
    from dashboard.lookup import SiteSearch

    a_fails, b_unknown, c_knows, d_knows = lookup("a", known=None), lookup("b", known=False), lookup("c", known=True), lookup("d", known=True)
    search = SiteSearch((a_fails, b_unknown, c_knows, d_knows))
    assert search.shown is c_knows and search.others_found == [d_knows] and search.failed == [a_fails]
    assert SiteSearch((a_fails, b_unknown)).shown is b_unknown
    assert SiteSearch((a_fails, lookup("e", known=None))).shown is a_fails
