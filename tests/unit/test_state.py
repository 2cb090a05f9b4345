"""The view state in the URL: the hand-built URLs agree with the app's routes."""
from __future__ import annotations

from urllib.parse import parse_qs, urlsplit

import pytest
from flask import Flask, url_for

from dashboard.visitors.routes import bp
from dashboard.visitors.state import InvalidVisitorId, ViewState, clean_visitor_id


@pytest.fixture
def routes():
    app = Flask(__name__)
    app.register_blueprint(bp)
    with app.test_request_context("/", base_url="http://lookup.example.com/support/"):
        yield app


@pytest.mark.parametrize("visitor_id", ["visitor_123", "3f2b8c1e-7a4d-4e9b-9c61-2d5f8a0b7e34", "A.b~c_d-e", "a" * 512])
def test_path_safe_ids_use_the_show_route(routes, visitor_id):
    state = ViewState(visitor_id, session="s 1", q="a&b", order="asc", at="2024-01-20T14:30:00Z", ticket="T-1")
    built = urlsplit(state.url(offset=50))
    expected = urlsplit(url_for("visitors.show", visitor_id=visitor_id))
    assert built.path == expected.path == f"/support/visitors/{visitor_id}"
    assert parse_qs(built.query) == {"session": ["s 1"], "q": ["a&b"], "order": ["asc"], "at": ["2024-01-20T14:30:00Z"], "ticket": ["T-1"], "offset": ["50"]}
    adapter = routes.url_map.bind("lookup.example.com", script_name="/support")
    assert adapter.match(built.path.removeprefix("/support")) == ("visitors.show", {"visitor_id": visitor_id})


@pytest.mark.parametrize("visitor_id", [".", "..", ".hidden", "a/b", "a\\b", "x?y", "x#y", "100%", "é", "a b", "a&b=c"])
def test_other_ids_use_the_query_form_and_survive_the_round_trip(routes, visitor_id):
    built = urlsplit(ViewState(visitor_id, session="s").url())
    assert built.path == urlsplit(url_for("visitors.lookup")).path
    assert parse_qs(built.query) == {"visitorId": [visitor_id], "session": ["s"]}


def test_defaults_are_left_out_of_the_url(routes):
    assert ViewState("v1", order="desc").url() == "/support/visitors/v1"


def test_form_action_carries_everything_but_the_fields_it_edits(routes):
    action, hidden = ViewState("a/b", session="s", q="x", order="asc", ticket="T").form_action()
    assert action == "/support/visitor"
    assert hidden == {"visitorId": "a/b", "ticket": "T"}  # session, q and order are fields of the form


def test_clean_visitor_id_trims_and_refuses():
    assert clean_visitor_id("  \tvisitor_123\n") == "visitor_123"
    assert clean_visitor_id(" a b ") == "a b"
    with pytest.raises(InvalidVisitorId, match="Enter a visitor ID"):
        clean_visitor_id("   ")
    with pytest.raises(InvalidVisitorId, match="513 characters"):
        clean_visitor_id("x" * 513)
