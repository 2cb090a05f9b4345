"""The visitor view's state and the forgiving search: pure functions, no requests."""
from __future__ import annotations

from urllib.parse import parse_qs, urlsplit

import pytest
from flask import Flask, url_for

from dashboard.visitors.routes import bp
from dashboard.visitors.state import InvalidVisitorId, ViewState, clean_visitor_id, visitor_id_from_search, visitor_id_in

UUID = "3f2b8c1e-7a4d-4e9b-9c61-2d5f8a0b7e34"


@pytest.mark.parametrize(
    "pasted,expected",
    [
        (UUID, UUID),
        (f"  {UUID}\n", UUID),
        (f"_pm_vid={UUID}", UUID),
        (f"_pm_sid=abc; _pm_vid={UUID}; theme=dark", UUID),
        (f"Cookie: _ga=GA1.2.3; _pm_vid={UUID}", UUID),
        (f"_pm_vid={UUID};", UUID),
        ("_pm_vid=odd%20id%C3%A9", "odd idé"),
        (f"https://shop.example.com/checkout?step=2&_pm_vid={UUID}#top", UUID),
        (f"https://shop.example.com/contact?visitorId={UUID}&utm_source=x", UUID),
        (f"https://lookup.example.com/visitors/{UUID}?at=2024-01-20T14:00:00Z&ticket=42", UUID),
        (f"https://lookup.example.com/visitors/{UUID}/", UUID),
        ("/visitors/visitor_123?session=s1", "visitor_123"),
        ("https://lookup.example.com/visitor?visitorId=odd%2Fid+%3F%23%25%26%C3%A9", "odd/id ?#%&é"),
        ("/visitor?visitorId=visitor_123", "visitor_123"),
        # Opaque IDs that only look a little like the above stay exactly as they are.
        ("odd/id ?#%&é", "odd/id ?#%&é"),
        ("a=b", "a=b"),
        ("visitor_123", "visitor_123"),
        ("https://shop.example.com/no-id-here", "https://shop.example.com/no-id-here"),
    ],
)
def test_the_id_is_taken_out_of_what_was_pasted(pasted, expected):
    assert visitor_id_in(pasted) == expected
    assert visitor_id_from_search(pasted) == expected


@pytest.mark.parametrize(
    "pasted,message",
    [
        ("", "Enter a visitor ID"),
        ("   \t", "Enter a visitor ID"),
        ("_pm_vid=", "Enter a visitor ID"),
        ("_pm_vid=; other=1", "Enter a visitor ID"),
        ("https://lookup.example.com/visitor?visitorId=", "Enter a visitor ID"),
        ("x" * 513, "513 characters"),
        ("_pm_vid=" + "y" * 600, "600 characters"),
        ("z" * 20_000, "20,000 characters"),
    ],
)
def test_empty_and_overlong_input_is_refused_with_a_message(pasted, message):
    with pytest.raises(InvalidVisitorId, match=message):
        visitor_id_from_search(pasted)


def test_exactly_512_characters_is_still_an_id():
    assert visitor_id_from_search("v" * 512) == "v" * 512


# -- URLs of the view: the hand-built ones agree with the app's routes -----------------------


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
