"""The visitor view's state and the forgiving search: pure functions, no requests."""
from __future__ import annotations

import pytest

from dashboard.visitors.state import InvalidVisitorId, visitor_id_from_search, visitor_id_in

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
