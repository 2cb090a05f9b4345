"""The visitor card: built once by a pure function, drawn as Intercom canvas and plain JSON
(the HTML render needs a template and is tested in tests/integration/test_helpdesk.py)."""
from __future__ import annotations

import json
from datetime import datetime, timedelta, timezone

import pytest

from dashboard import cards
from dashboard.demo.data import (
    EXAMPLE_VISITOR_ID,
    HOSTILE_VISITOR_ID,
    HUGE_VISITOR_ID,
    LARGE_VISITOR_ID,
    SIGNALS_CONTACT_AT,
    SIGNALS_VISITOR_ID,
    build_visitor_payload,
)
from dashboard.formatting import HIDDEN_CHARACTERS
from dashboard.postmetric.models import PageView, Visitor, parse_visitor_payload
from dashboard.signals import find_signals
from dashboard.timeline import assign_page_views, parse_moment
from tests.support.signals import SIGNALS_VISITOR_KINDS

NOW = datetime(2024, 6, 1, tzinfo=timezone.utc)
LINK = "https://lookup.example/visitor?visitorId=x"


def demo_visitor(visitor_id: str) -> Visitor:
    payload = build_visitor_payload(visitor_id, NOW)
    assert payload is not None
    return parse_visitor_payload(json.dumps({"status": "success", "data": payload}), visitor_id)


def card_of(visitor: Visitor, moment: datetime | None = None) -> cards.Card:
    found, _ = find_signals(visitor, assign_page_views(visitor.sessions, visitor.page_views), moment)
    return cards.build_card(visitor, moment=moment, signals=found, full_view_url=LINK)


def test_the_card_lists_the_last_pages_before_the_ticket_newest_first():
    visitor = demo_visitor(EXAMPLE_VISITOR_ID)
    ordered = sorted(visitor.page_views, key=lambda view: view.timestamp)
    moment = ordered[10].timestamp + timedelta(seconds=1)
    card = card_of(visitor, moment)
    expected = list(reversed(ordered[6:11]))
    assert [page.time for page in card.last_pages] == [view.timestamp for view in expected]
    assert all(page.time <= moment for page in card.last_pages)
    assert card.sessions == visitor.session_count and card.page_views == visitor.page_view_count
    assert card.last_seen == visitor.last_visit
    assert card.moment == moment and card.found and card.full_view_url == LINK


def test_without_a_moment_the_card_lists_the_newest_pages():
    visitor = demo_visitor(EXAMPLE_VISITOR_ID)
    card = card_of(visitor)
    newest = sorted((view.timestamp for view in visitor.page_views), reverse=True)[: cards.LAST_PAGES]
    assert [page.time for page in card.last_pages] == newest


def test_the_card_carries_what_stands_out_in_the_dashboard_s_order():
    visitor = demo_visitor(SIGNALS_VISITOR_ID)
    card = card_of(visitor, parse_moment(SIGNALS_CONTACT_AT))
    assert [kind for kind, _ in card.signals] == SIGNALS_VISITOR_KINDS
    assert all(sentence for _, sentence in card.signals)


def test_an_unknown_visitor_gives_a_card_that_says_so():
    card = card_of(Visitor.empty("nobody"))
    assert not card.found and card.error == cards.UNKNOWN_VISITOR
    assert cards.card_json(card)["found"] is False
    texts = json.dumps(cards.card_canvas(card, now=NOW))
    assert "PostMetric has no visitor" in texts


def test_strangers_text_is_shortened_and_made_visible():
    hostile = "\u202e" + "x" * 10_000
    visitor = Visitor(
        visitor_id="v",
        session_count=0,
        page_view_count=1,
        page_views=[PageView(path="/a\x00b" + "y" * 5000, title=hostile, timestamp=NOW)],
    )
    (page,) = card_of(visitor).last_pages
    assert len(page.title) <= cards.SHOWN_TEXT and len(page.path) <= cards.SHOWN_TEXT
    assert not HIDDEN_CHARACTERS.search(page.title) and "[U+202E]" in page.title
    assert "[U+0000]" in page.path


def test_the_json_render_names_every_part_of_the_card():
    visitor = demo_visitor(SIGNALS_VISITOR_ID)
    card = card_of(visitor, parse_moment(SIGNALS_CONTACT_AT))
    body = cards.card_json(card)
    assert body["visitorId"] == SIGNALS_VISITOR_ID and body["found"] is True and body["error"] is None
    assert body["sessions"] == visitor.session_count and body["pageViews"] == visitor.page_view_count
    assert body["ticketMoment"] == "2024-02-11T19:10:00.000Z"
    assert [signal["kind"] for signal in body["signals"]] == SIGNALS_VISITOR_KINDS
    assert [page["title"] for page in body["lastPages"]] == [page.title for page in card.last_pages]
    assert body["fullViewUrl"] == LINK
    json.dumps(body)  # plain JSON all the way down


def canvas_texts(canvas: dict) -> list[str]:
    """Every text a person reads on the canvas, component by component."""
    found = []
    for component in canvas["canvas"]["content"]["components"]:
        if component["type"] == "text":
            found.append(component["text"])
        for item in component.get("items", []):
            found.extend(str(item.get(key, "")) for key in ("title", "subtitle", "tertiary_text", "field", "value"))
    return found


def test_the_canvas_has_counts_signals_pages_and_the_two_buttons():
    visitor = demo_visitor(SIGNALS_VISITOR_ID)
    card = card_of(visitor, parse_moment(SIGNALS_CONTACT_AT))
    canvas = cards.card_canvas(card, "Europe/Berlin", now=NOW)
    components = canvas["canvas"]["content"]["components"]
    texts = canvas_texts(canvas)
    assert "Last pages before the conversation" in texts and "What stands out" in texts
    assert f"{visitor.page_view_count:,}" in texts
    assert all(sentence in texts for _, sentence in card.signals)
    assert all(page.title in texts for page in card.last_pages)
    buttons = {component["id"]: component["action"] for component in components if component["type"] == "button"}
    assert buttons == {"refresh": {"type": "submit"}, "open-full-view": {"type": "url", "url": LINK}}


@pytest.mark.parametrize("visitor_id", [LARGE_VISITOR_ID, HOSTILE_VISITOR_ID, HUGE_VISITOR_ID])
def test_the_canvas_stays_under_intercom_s_limit(visitor_id):
    visitor = demo_visitor(visitor_id)
    newest = max(view.timestamp for view in visitor.page_views)
    canvas = cards.card_canvas(card_of(visitor, newest), now=NOW)
    size = cards.canvas_size(canvas)
    assert 0 < size < cards.CANVAS_LIMIT
    # And small for a sidebar: the card is a summary, not the timeline.
    assert size < 16 * 1024, size


def test_strangers_text_never_reaches_a_markdown_text_component():
    """Intercom reads Markdown in text components: titles, paths and sentences (which
    quote them) go into list items only, shown as plain text."""
    visitor = demo_visitor(HOSTILE_VISITOR_ID)
    card = card_of(visitor)
    strangers = {page.title for page in card.last_pages} | {page.path for page in card.last_pages} | {s for _, s in card.signals}
    components = cards.card_canvas(card, now=NOW)["canvas"]["content"]["components"]
    markdown = [component["text"] for component in components if component["type"] == "text"]
    assert strangers and not strangers & set(markdown)


def test_a_canvas_that_would_outgrow_the_limit_says_so_instead():
    card = cards.error_card("v", "x" * (cards.CANVAS_LIMIT + 1), LINK)
    canvas = cards.card_canvas(card, now=NOW)
    assert cards.canvas_size(canvas) < cards.CANVAS_LIMIT
    assert cards.TOO_LARGE in canvas_texts(canvas)
    assert canvas["canvas"]["content"]["components"][-1]["action"]["url"] == LINK
