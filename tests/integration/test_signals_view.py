"""'What stands out' and 'Seen before in tickets' in the visitor view: full page and
fragments, against the stand-in on a real port; the site's ticket URL template."""
from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from html.parser import HTMLParser
from urllib.parse import quote

import pytest
from sqlalchemy import select

from dashboard import audit, create_app
from dashboard.demo.data import HOSTILE_VISITOR_ID, SIGNALS_CONTACT_AT, SIGNALS_VISITOR_ID
from dashboard.extensions import db
from dashboard.models import Site
from tests.conftest import AuthActions, add_agent, make_settings
from tests.support.accounts import ADMIN_EMAIL, ADMIN_PASSWORD, logged_in_client, make_admin, post
from tests.support.html import attrs, soup
from tests.support.signals import SIGNALS_VISITOR_KINDS

HTMX = {"HX-Request": "true"}
SIGNALS_URL = f"/visitors/{SIGNALS_VISITOR_ID}"


@dataclass
class Page:
    """What the tests read from a page: element ids, the panel's lines and links, the ticket list."""

    ids: list[str] = field(default_factory=list)
    signals: list[dict] = field(default_factory=list)  # {"kind", "text", "links": [href, ...]}
    tickets: list[dict] = field(default_factory=list)  # {"text", "href"}
    has_panel: bool = False


class _Reader(HTMLParser):
    def __init__(self):
        super().__init__(convert_charrefs=True)
        self.page = Page()
        self._open: list[str] = []  # the tag names of the elements we are inside (signal/ticket lines)
        self._where: str | None = None

    def handle_starttag(self, tag, attrs):
        attrs = dict(attrs)
        if "id" in attrs:
            self.page.ids.append(attrs["id"])
            if attrs["id"] == "signals":
                self.page.has_panel = True
            if attrs["id"] == "seen-tickets":
                self._where = "tickets"
        if tag == "li" and "data-signal" in attrs:
            self.page.signals.append({"kind": attrs["data-signal"], "text": "", "links": []})
            self._open = ["li"]
            self._where = "signal"
        elif tag == "li" and self._where == "tickets":
            self.page.tickets.append({"text": "", "href": None})
            self._open = ["li"]
        elif self._open:
            if tag == "a" and self._where == "signal":
                self.page.signals[-1]["links"].append(attrs["href"])
            if tag == "a" and self._where == "tickets":
                self.page.tickets[-1]["href"] = attrs["href"]
            self._open.append(tag)

    def handle_endtag(self, tag):
        if self._open:
            self._open.pop()
            if not self._open and self._where == "signal":
                self._where = None
        elif tag == "div" and self._where == "tickets":
            self._where = None

    def handle_data(self, data):
        if self._open:
            line = self.page.signals[-1] if self._where == "signal" else self.page.tickets[-1]
            line["text"] += data


def read(html: str) -> Page:
    reader = _Reader()
    reader.feed(html)
    return reader.page


def squashed(value: str) -> str:
    return " ".join(value.split())


# -- What stands out -----------------------------------------------------------------------


def test_the_full_page_shows_each_signal_linked_to_rows_on_the_page(logged_in):
    response = logged_in.get(f"{SIGNALS_URL}?at={SIGNALS_CONTACT_AT}")
    assert response.status_code == 200
    page = read(response.text)
    assert page.has_panel
    assert [s["kind"] for s in page.signals] == SIGNALS_VISITOR_KINDS
    assert squashed(page.signals[0]["text"]).startswith("Last page before contact: “Contact us” (/contact), 1 min before contact.")
    # Every row a line links is on this page (21 views: one page), reached in place.
    for signal in page.signals:
        assert signal["links"]
        for href in signal["links"]:
            assert href.startswith("#") and href[1:] in page.ids
    assert len(page.ids) == len(set(page.ids)), "every id once"


@pytest.mark.parametrize("target, block_id", [("main", "visitor-view"), ("visitor-detail", "visitor-detail"), ("timeline", "timeline")])
def test_each_fragment_that_holds_the_timeline_holds_the_panel(logged_in, target, block_id):
    logged_in.get(SIGNALS_URL)  # the look-up the fragments belong to
    response = logged_in.get(SIGNALS_URL, headers={**HTMX, "HX-Target": target})
    html = response.text
    assert response.status_code == 200 and "<html" not in html
    page = read(html)
    assert block_id in page.ids and page.has_panel
    assert {"error_page", "repeated", "loop", "long_stay", "several_devices"} <= {s["kind"] for s in page.signals}
    assert "last_before_contact" not in {s["kind"] for s in page.signals}  # no ?at=


def test_a_row_off_the_page_is_linked_through_its_sessions_view(logged_in):
    # Narrowed to the mobile session, the desktop session's rows are not on the page.
    url = f"{SIGNALS_URL}?session=sess_signals_mobile"
    page = read(logged_in.get(url).text)
    (long_stay,) = [s for s in page.signals if s["kind"] == "long_stay"]
    (href,) = long_stay["links"]
    path, anchor = href.split("#")
    assert path == f"{SIGNALS_URL}?session=sess_signals_desktop" and anchor not in page.ids
    # That view has the row.
    assert anchor in read(logged_in.get(path).text).ids
    (repeated,) = [s for s in page.signals if s["kind"] == "repeated"]
    assert all(href.startswith("#") and href[1:] in page.ids for href in repeated["links"])


def test_rows_loaded_later_carry_their_anchors(logged_in):
    full = logged_in.get("/visitors/visitor_large").text
    page = read(full)
    anchors = [i for i in page.ids if i.startswith("view-")]
    assert anchors
    more = logged_in.get("/visitors/visitor_large?offset=50", headers={**HTMX, "HX-Target": "load-more"}).text
    later = [i for i in read(more).ids if i.startswith("view-")]
    assert later and not set(later) & set(anchors)


def test_hostile_text_in_the_panel_is_escaped_and_isolated(logged_in):
    html = logged_in.get(f"/visitors/{HOSTILE_VISITOR_ID}?at=2024-03-01T09:31:00Z").text
    page = read(html)
    assert page.signals
    start, end = html.index('id="signals"'), html.index("</section>", html.index('id="signals"'))
    panel = html[start:end]
    assert "<img" not in panel and "<script" not in panel and "\u202e" not in panel
    assert all(line["text"].strip() for line in page.signals)


def test_an_unknown_visitor_has_no_panel(logged_in):
    assert not read(logged_in.get("/visitors/visitor_unknown").text).has_panel


# -- Seen before in tickets --------------------------------------------------------------------


def look_up(client, ticket: str | None, visitor: str = SIGNALS_VISITOR_ID):
    query = f"?ticket={quote(ticket, safe='')}" if ticket else ""
    response = client.get(f"/visitors/{visitor}{query}")
    assert response.status_code == 200
    return read(response.text)


def record(app, ticket: str, *, ago: timedelta, agent_id: int | None, visitor: str = SIGNALS_VISITOR_ID, site: str = "default"):
    with app.app_context():
        engine = db.engine
    audit.record_event(
        engine,
        agent_id=agent_id,
        site=site,
        visitor_id=visitor,
        action="lookup",
        outcome="ok",
        ticket=ticket,
        created_at=datetime.now(timezone.utc) - ago,
    )


def test_earlier_tickets_are_listed_newest_first_without_the_one_on_screen(app, logged_in):
    assert look_up(logged_in, "4521").tickets == []  # nothing before
    page = look_up(logged_in, "4522")
    assert [squashed(t["text"]) for t in page.tickets] == ["ticket 4521, looked up by agent now"]
    assert page.tickets[0]["href"] is None  # the site has no ticket URL template
    # Without a ticket on screen every earlier one is listed.
    assert [squashed(t["text"]).split(",")[0] for t in look_up(logged_in, None).tickets] == ["ticket 4522", "ticket 4521"]


def test_at_most_five_distinct_tickets_each_with_its_latest_look_up(app, logged_in):
    admin_id = make_admin(app)
    for number, days in [(1, 9), (2, 8), (3, 7), (4, 6), (5, 5), (6, 4)]:
        record(app, f"T-{number}", ago=timedelta(days=days), agent_id=None)
    record(app, "T-1", ago=timedelta(days=2), agent_id=admin_id)  # looked up again later, by the admin
    record(app, "T-9", ago=timedelta(days=1), agent_id=None, visitor="visitor_123")  # another visitor
    record(app, "T-8", ago=timedelta(days=1), agent_id=None, site="shop")  # another site
    page = look_up(logged_in, None)
    assert [squashed(t["text"]) for t in page.tickets] == [
        "ticket T-1, looked up by admin 2 days ago",
        "ticket T-6, looked up by (deleted agent) 4 days ago",
        "ticket T-5, looked up by (deleted agent) 5 days ago",
        "ticket T-4, looked up by (deleted agent) 6 days ago",
        "ticket T-3, looked up by (deleted agent) 7 days ago",
    ]


def test_the_history_is_in_the_full_page_and_the_main_fragment_only(app, logged_in):
    look_up(logged_in, "4521")
    main = read(logged_in.get(f"{SIGNALS_URL}?ticket=9", headers={**HTMX, "HX-Target": "main"}).text)
    assert "seen-tickets" in main.ids and [t["text"].split(",")[0].strip() for t in main.tickets] == ["ticket 4521"]
    detail = read(logged_in.get(f"{SIGNALS_URL}?ticket=9", headers={**HTMX, "HX-Target": "visitor-detail"}).text)
    assert "seen-tickets" not in detail.ids  # the summary is not part of that block


def test_tickets_link_through_the_sites_template_url_encoded(tmp_path, fake_api):
    # The default site is the environment's: its template is POSTMETRIC_TICKET_URL_TEMPLATE.
    app = create_app(make_settings(tmp_path, fake_api.url, postmetric_ticket_url_template="https://acme.zendesk.com/agent/tickets/{ticket}"))
    try:
        add_agent(app)
        client = app.test_client()
        AuthActions(app, client).login()
        look_up(client, "45/21?x=<b>")
        page = look_up(client, "4522")
        assert page.tickets[0]["href"] == "https://acme.zendesk.com/agent/tickets/45%2F21%3Fx%3D%3Cb%3E"
        assert squashed(page.tickets[0]["text"]).startswith("ticket 45/21?x=<b>,")
    finally:
        app.extensions["db_engine"].dispose()


def test_without_a_template_tickets_are_plain_text(app, logged_in):
    look_up(logged_in, "4521")
    page = look_up(logged_in, "4522")
    assert [t.get("href") for t in page.tickets] == [None]


# -- the admin setting ---------------------------------------------------------------------


@pytest.fixture
def admin(app):
    make_admin(app)
    return logged_in_client(app, ADMIN_EMAIL, ADMIN_PASSWORD)


SHOP = {"name": "Shop", "api_key": "pm_" + "5e" * 31 + "c0de"}


def stored_template(app) -> str | None:
    with app.app_context():
        return db.session.scalar(select(Site.ticket_url_template).where(Site.slug == "shop"))


def edit(admin, fake_api, template: str):
    """Give the admin's site "shop" this template (the site is added first if it is not there)."""
    if admin.get("/admin/sites/shop/edit").status_code == 404:
        assert post(admin, "/admin/sites", {**SHOP, "base_url": fake_api.url}).status_code == 303
    return post(admin, "/admin/sites/shop/edit", {"name": "Shop", "base_url": fake_api.url, "api_key": "", "ticket_url_template": template})


def test_an_admin_sets_and_clears_the_ticket_url_template(app, admin, fake_api):
    assert edit(admin, fake_api, " https://acme.zendesk.com/agent/tickets/{ticket} ").status_code == 303
    assert stored_template(app) == "https://acme.zendesk.com/agent/tickets/{ticket}"
    form = soup(admin.get("/admin/sites/shop/edit"))
    assert attrs(form, "input[name=ticket_url_template]", "value") == ["https://acme.zendesk.com/agent/tickets/{ticket}"]
    assert edit(admin, fake_api, "").status_code == 303
    assert stored_template(app) is None


@pytest.mark.parametrize(
    "template, message",
    [
        ("ftp://tickets.example.com/{ticket}", "http:// or https://"),
        ("javascript:alert('{ticket}')", "http:// or https://"),
        ("https://{ticket}.example.com/", "http:// or https://"),
        ("https://tickets.example.com/42", "must contain {ticket}"),
        ("https://tickets.example.com/{ticket} x", "without spaces"),
    ],
)
def test_unusable_templates_are_refused(app, admin, fake_api, template, message):
    response = edit(admin, fake_api, template)
    assert response.status_code == 400 and message in response.text
    assert stored_template(app) is None


def test_a_new_site_can_have_a_template(app, admin, fake_api):
    data = {**SHOP, "base_url": fake_api.url, "ticket_url_template": "https://t.example.com/t/{ticket}"}
    assert post(admin, "/admin/sites", data).status_code == 303
    with app.app_context():
        assert db.session.scalar(select(Site.ticket_url_template).where(Site.slug == "shop")) == "https://t.example.com/t/{ticket}"


def test_the_migration_adds_the_column(tmp_path):
    from sqlalchemy import inspect

    from dashboard.db import make_engine, migrate

    engine = make_engine(f"sqlite:///{tmp_path / 'fresh.db'}")
    migrate(engine)
    assert "ticket_url_template" in {column["name"] for column in inspect(engine).get_columns("sites")}
