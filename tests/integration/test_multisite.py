"""Several PostMetric sites: a look-up that names no site asks all of them at once."""
from __future__ import annotations

import time

import pytest
from sqlalchemy import select

from dashboard.demo import DEMO_API_KEY, EXAMPLE_VISITOR_ID, RETURNING_VISITOR_ID, FakeApiServer
from dashboard.extensions import db
from dashboard.models import LookupEvent
from tests.support.accounts import add_site
from tests.support.html import attrs, one, soup, text_of

SHOP_KEY = "pm_" + "b" * 64
HTMX = {"HX-Request": "true", "HX-Target": "main"}


@pytest.fixture
def shop_api():
    """A second website: its own key, and of the demo visitors only these two."""
    with FakeApiServer(api_keys=[SHOP_KEY], visitors=[EXAMPLE_VISITOR_ID, RETURNING_VISITOR_ID]) as server:
        yield server


@pytest.fixture
def blog_api():
    """A third website that knows only the returning visitor."""
    with FakeApiServer(api_keys=[SHOP_KEY], visitors=[RETURNING_VISITOR_ID]) as server:
        yield server


@pytest.fixture
def two_sites(app, shop_api, blog_api):
    """The default site (the session's stand-in, which knows every demo visitor, from the
    environment) is replaced by two sites whose visitors differ."""
    app.extensions["site_directory"].configured = ()
    add_site(app, "shop", "Shop", shop_api.url, SHOP_KEY)
    add_site(app, "blog", "Blog", blog_api.url, SHOP_KEY)
    return app


def events(app) -> list[LookupEvent]:
    with app.app_context():
        return list(db.session.scalars(select(LookupEvent).order_by(LookupEvent.id)))


def test_found_on_one_site(two_sites, logged_in, shop_api, blog_api):
    response = logged_in.get(f"/visitors/{EXAMPLE_VISITOR_ID}")
    html = response.text
    assert response.status_code == 200
    page = soup(html)
    assert one(page, "#visitor-heading") and "from Shop." in html
    assert "known on more than one site" not in html and "could not be asked" not in html
    assert shop_api.stats.calls == blog_api.stats.calls == 1  # both were asked
    # The address bar names the site: pushed for htmx, replaced by app.js for a full page.
    assert one(page, "#visitor-view")["data-canonical-url"] == f"/visitors/{EXAMPLE_VISITOR_ID}?site=shop"
    fragment = logged_in.get(f"/visitor?visitorId={EXAMPLE_VISITOR_ID}", headers=HTMX)
    assert fragment.headers["HX-Push-Url"] == f"/visitors/{EXAMPLE_VISITOR_ID}?site=shop"
    # Links inside the view keep the site, so narrowing asks only that site.
    assert any(href.startswith(f"/visitors/{EXAMPLE_VISITOR_ID}?site=shop&session=") for href in attrs(page, "a", "href"))
    assert [e.site for e in events(two_sites)] == ["shop", "shop"]


def test_found_on_two_sites_says_so_with_links(two_sites, logged_in):
    html = logged_in.get(f"/visitors/{RETURNING_VISITOR_ID}?ticket=T-7").text
    assert "known on more than one site" in html and "from Shop." in html
    page = soup(html)
    assert [a["href"] for a in page.select("a") if text_of(a) == "Blog"] == [f"/visitors/{RETURNING_VISITOR_ID}?site=blog&ticket=T-7"]
    assert one(page, "#visitor-view")["data-canonical-url"] == f"/visitors/{RETURNING_VISITOR_ID}?site=shop&ticket=T-7"
    # The other site's view is there and says which site it shows.
    blog = logged_in.get(f"/visitors/{RETURNING_VISITOR_ID}?site=blog").text
    assert "from Blog." in blog and "known on more than one site" not in blog


def test_found_on_no_site(two_sites, logged_in):
    response = logged_in.get("/visitors/visitor_live")
    html = response.text
    assert response.status_code == 200
    assert "PostMetric has no data for this visitor" in html and "any of the 2 sites" in html
    assert not soup(html).select("[data-canonical-url]")
    [event] = events(two_sites)
    assert event.site == "shop,blog" and event.outcome == "unknown"


def test_one_site_failing_while_another_knows_the_visitor(two_sites, logged_in, blog_api):
    blog_api.stop()  # the blog's PostMetric is down
    try:
        html = logged_in.get(f"/visitors/{EXAMPLE_VISITOR_ID}").text
    finally:
        blog_api.start()
    page = soup(html)
    assert one(page, "#visitor-heading") and "from Shop." in html
    note = text_of(one(page, '[data-failed-site="blog"]'))
    assert note.startswith("Blog could not be asked: ") and "connect" in note
    assert [(e.site, e.outcome) for e in events(two_sites)] == [("shop", "ok")]


def test_a_failing_site_with_nobody_else_knowing_shows_the_visitor_as_unknown_with_the_note(two_sites, logged_in):
    from dashboard.models import Site

    with two_sites.app_context():  # the blog's base URL is wrong: its "API" answers 404 pages
        blog = db.session.scalars(select(Site).where(Site.slug == "blog")).one()
        blog.base_url += "/wrong-path"
        db.session.commit()
    two_sites.extensions["site_directory"].invalidate()
    html = logged_in.get("/visitors/visitor_live").text
    assert "PostMetric has no data for this visitor" in html
    assert one(soup(html), '[data-failed-site="blog"]')


def test_every_site_failing_shows_the_error_state(two_sites, logged_in):
    response = logged_in.get("/visitors/fail-500")
    html = response.text
    assert response.status_code == 502  # PostMetric's 500, as for a single site
    page = soup(html)
    assert one(page, "[data-error-kind]")["data-error-kind"] == "server_error"
    assert one(page, '[data-failed-site="blog"]')  # the second failure is named too


def test_the_sites_are_asked_in_parallel(tmp_path, fake_api):
    from dashboard import create_app
    from tests.conftest import AuthActions, add_agent, make_settings

    with FakeApiServer(api_keys=[SHOP_KEY], latency=0.4) as slow_a, FakeApiServer(api_keys=[SHOP_KEY], latency=0.4) as slow_b:
        app = create_app(make_settings(tmp_path, slow_a.url, api_key=SHOP_KEY))
        add_site(app, "b", "B", slow_b.url, SHOP_KEY)
        add_agent(app)
        client = app.test_client()
        AuthActions(app, client).login()
        started = time.monotonic()
        html = client.get("/visitors/visitor_unknown").text
        elapsed = time.monotonic() - started
        assert "any of the 2 sites" in html
        assert slow_a.stats.calls == slow_b.stats.calls == 1
        assert elapsed < 0.75, f"two 0.4 s sites took {elapsed:.2f} s: asked one after the other?"
        app.extensions["db_engine"].dispose()


def test_each_site_goes_through_the_cache(two_sites, logged_in, shop_api, blog_api):
    for _ in range(3):
        logged_in.get(f"/visitors/{RETURNING_VISITOR_ID}")
    assert shop_api.stats.calls == blog_api.stats.calls == 1
    logged_in.get(f"/visitors/{RETURNING_VISITOR_ID}?refresh=1")
    assert shop_api.stats.calls == blog_api.stats.calls == 2


def test_a_single_site_needs_no_site_parameter(logged_in, fake_api):
    html = logged_in.get(f"/visitors/{EXAMPLE_VISITOR_ID}").text
    assert not soup(html).select("[data-canonical-url]") and "Default site" in html
    assert fake_api.stats.calls == 1


def test_an_unknown_site_parameter_is_a_clear_404(two_sites, logged_in):
    response = logged_in.get(f"/visitors/{EXAMPLE_VISITOR_ID}?site=nope")
    assert response.status_code == 404 and "no PostMetric site called" in response.text


def test_demo_key_stays_server_side_with_several_sites(two_sites, logged_in):
    for url in (f"/visitors/{RETURNING_VISITOR_ID}", "/visitors/fail-500", "/visitors/visitor_live"):
        html = logged_in.get(url).text
        assert SHOP_KEY not in html and SHOP_KEY[-12:] not in html and DEMO_API_KEY not in html
