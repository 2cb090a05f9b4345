"""The visitor card a help desk shows beside a ticket: one card, three renders.

``build_card`` is a pure function over the typed visitor, the ticket moment and the
signals (dashboard.signals); ``card_html`` (the Zendesk sidebar's compact fragment),
``card_canvas`` (Intercom Canvas Kit JSON) and ``card_json`` (help desks that render
JSON) draw the same ``Card``. ``look_up_card`` is the one entry point of every help-desk
route: it asks the dashboard's look-up service (so budget, cache, fairness and error
states are the dashboard's), writes the audit row (failing closed, as the dashboard
does) and builds the card.
"""
from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timezone

from flask import current_app, render_template, url_for

from dashboard import audit, requestlog, signals as signal_rules
from dashboard.extensions import db
from dashboard.formatting import format_datetime, format_duration, iso, shorten, visible_text
from dashboard.integrations.agents import zendesk_user_disabled, zendesk_user_id_from
from dashboard.lookup import VisitorService
from dashboard.models import Agent, Integration
from dashboard.postmetric.models import Visitor
from dashboard.timeline import assign_page_views

LAST_PAGES = 5  # the pages before the ticket that the card lists, newest first
SHOWN_TEXT = 80  # characters of a stranger's title or path on the card
MAX_VISITOR_ID_LENGTH = 512  # PostMetric's own limit, as the visitor view's
#: Intercom refuses a canvas whose content is larger than this.
CANVAS_LIMIT = 64 * 1024
UNKNOWN_VISITOR = "PostMetric has no visitor with this ID: nothing was recorded for it on this site (yet)."
TOO_LARGE = "This visitor's card is too large to show here; open the full view."
NOT_RECORDED = "This look-up could not be recorded in the audit trail, so the card is not shown; try again in a moment."


@dataclass(frozen=True)
class CardPage:
    """One page view on the card: when, its title (or path), and its path."""

    time: datetime
    title: str
    path: str


@dataclass(frozen=True)
class Card:
    """What a help desk shows of a visitor. Strangers' text (titles, paths, signal
    sentences) is already shortened and its hidden characters made visible; each render
    still escapes it for its own format."""

    visitor_id: str
    last_seen: datetime | None
    sessions: int
    page_views: int
    signals: tuple[tuple[str, str], ...]  # (kind, sentence), in dashboard.signals.KINDS order
    last_pages: tuple[CardPage, ...]  # before the ticket moment, newest first
    full_view_url: str
    error: str | None = None
    moment: datetime | None = None

    @property
    def found(self) -> bool:
        return self.error is None


def _shown(text: str | None) -> str:
    """A stranger's text as the card shows it: cut first (it may be megabytes), then its
    hidden characters made visible."""
    return shorten(visible_text((text or "")[: SHOWN_TEXT + 1]), SHOWN_TEXT)


def build_card(
    visitor: Visitor, *, moment: datetime | None, signals: Sequence[signal_rules.Signal], full_view_url: str
) -> Card:
    """The card of ``visitor`` as it was at ``moment`` (the ticket's creation; None: now)."""
    if visitor.is_unknown:
        return error_card(visitor.visitor_id, UNKNOWN_VISITOR, full_view_url)
    views = sorted(visitor.page_views, key=lambda view: view.timestamp)
    if moment is not None:
        views = [view for view in views if view.timestamp <= moment]
    last_pages = tuple(
        CardPage(view.timestamp, _shown(view.title) or _shown(view.path) or "(no path)", _shown(view.path))
        for view in reversed(views[-LAST_PAGES:])
    )
    newest = max((view.timestamp for view in visitor.page_views), default=None)
    return Card(
        visitor_id=visitor.visitor_id,
        last_seen=visitor.last_visit or newest,
        sessions=visitor.session_count,
        page_views=visitor.page_view_count,
        signals=tuple((signal.kind, signal.sentence) for signal in signals),
        last_pages=last_pages,
        full_view_url=full_view_url,
        moment=moment,
    )


def error_card(visitor_id: str, sentence: str, full_view_url: str) -> Card:
    """A card that says why there is nothing to show."""
    return Card(visitor_id, None, 0, 0, (), (), full_view_url, error=sentence)


# --- the three renders ----------------------------------------------------------------


def card_json(card: Card) -> dict:
    """The card as plain JSON, for help desks that render it themselves."""
    return {
        "visitorId": card.visitor_id,
        "found": card.found,
        "error": card.error,
        "lastSeen": iso(card.last_seen) or None,
        "sessions": card.sessions,
        "pageViews": card.page_views,
        "ticketMoment": iso(card.moment) or None,
        "signals": [{"kind": kind, "sentence": sentence} for kind, sentence in card.signals],
        "lastPages": [{"time": iso(page.time), "title": page.title, "path": page.path} for page in card.last_pages],
        "fullViewUrl": card.full_view_url,
    }


def card_html(card: Card, zone: str = "UTC") -> str:
    """The compact HTML fragment (fits a 320 px sidebar); times in ``zone``."""
    return render_template(
        "embed/card.html", card=card, card_time=lambda moment: format_datetime(moment, zone, seconds=False)
    )


def _ago(moment: datetime | None, now: datetime) -> str:
    if moment is None:
        return "never"
    return f"{format_duration((now - moment).total_seconds())} ago" if moment <= now else "just now"


def card_canvas(card: Card, zone: str = "UTC", *, now: datetime | None = None) -> dict:
    """The card as an Intercom Canvas Kit canvas, under CANVAS_LIMIT.

    Strangers' text goes only into list items' titles and subtitles, which Intercom
    shows as plain text; text components (which read Markdown) hold only our own words.
    """
    now = now or datetime.now(timezone.utc)
    components: list[dict] = [{"type": "text", "text": "Visitor", "style": "header"}]
    components.append({"type": "list", "disabled": True, "items": [_item("visitor-id", _shown(card.visitor_id), "Visitor ID")]})
    if card.error:
        components.append({"type": "list", "disabled": True, "items": [_item("problem", card.error, "Why there is no card")]})
    else:
        components.append(
            {
                "type": "data-table",
                "items": [
                    {"type": "field-value", "field": "Last seen", "value": f"{format_datetime(card.last_seen, zone, seconds=False)} ({_ago(card.last_seen, now)})"},
                    {"type": "field-value", "field": "Sessions", "value": f"{card.sessions:,}"},
                    {"type": "field-value", "field": "Page views", "value": f"{card.page_views:,}"},
                ],
            }
        )
        if card.signals:
            components.append({"type": "text", "text": "What stands out", "style": "header"})
            items = [_item(f"signal-{n}", sentence, kind.replace("_", " ")) for n, (kind, sentence) in enumerate(card.signals)]
            components.append({"type": "list", "disabled": True, "items": items})
        heading = "Last pages before the conversation" if card.moment else "Last pages"
        components.append({"type": "text", "text": heading, "style": "header"})
        if card.last_pages:
            items = [
                _item(f"page-{n}", page.title, page.path, format_datetime(page.time, zone, seconds=False))
                for n, page in enumerate(card.last_pages)
            ]
            components.append({"type": "list", "disabled": True, "items": items})
        else:
            components.append({"type": "text", "text": "No page views before then.", "style": "muted"})
    canvas = _with_buttons(components, card.full_view_url)
    if canvas_size(canvas) >= CANVAS_LIMIT:  # every part is capped; this is the last guard
        return _with_buttons(_message(TOO_LARGE), card.full_view_url)
    return canvas


def _with_buttons(components: list[dict], full_view_url: str) -> dict:
    buttons = [
        {"type": "divider"},
        {"type": "button", "id": "refresh", "label": "Refresh", "style": "secondary", "action": {"type": "submit"}},
        {"type": "button", "id": "open-full-view", "label": "Open the full view", "action": {"type": "url", "url": full_view_url}},
    ]
    return {"canvas": {"content": {"components": [*components, *buttons]}}}


def _message(sentence: str) -> list[dict]:
    return [{"type": "text", "text": "Visitor", "style": "header"}, {"type": "list", "disabled": True, "items": [_item("problem", sentence)]}]


def _item(item_id: str, title: str, subtitle: str = "", tertiary: str = "") -> dict:
    item = {"type": "item", "id": item_id, "title": title or "—"}
    if subtitle:
        item["subtitle"] = subtitle
    if tertiary:
        item["tertiary_text"] = tertiary
    return item


def canvas_size(canvas: dict) -> int:
    """Bytes of the canvas's ``content`` as Intercom receives it (UTF-8 JSON)."""
    return len(json.dumps(canvas["canvas"]["content"], ensure_ascii=False).encode())


def message_canvas(sentence: str) -> dict:
    """A canvas that only says ``sentence`` (a refusal or a problem)."""
    return {"canvas": {"content": {"components": _message(sentence)}}}


# --- looking the card up ----------------------------------------------------------------


@dataclass(frozen=True)
class CardResult:
    """What a help-desk route answers: the card (maybe one that says why it is empty) and
    the HTTP status, or, when no card may be shown at all, only the sentence and status."""

    status: int
    card: Card | None = None
    sentence: str | None = None

    @property
    def message(self) -> str:
        return self.sentence or (self.card.error if self.card and self.card.error else "")


def clean_visitor_id(raw: str | None) -> str | None:
    """The visitor ID as the help desk sent it, trimmed; None when empty or too long."""
    visitor_id = (raw or "").strip()
    return visitor_id if visitor_id and len(visitor_id) <= MAX_VISITOR_ID_LENGTH else None


def full_view_url(base_url: str, visitor_id: str, *, at: datetime | None, ticket: str | None, site: str | None) -> str:
    """The dashboard's visitor view for this card (the query form: it opens every ID)."""
    params = {"visitorId": visitor_id, "site": site, "at": iso(at) or None, "ticket": ticket}
    return base_url.rstrip("/") + url_for("visitors.lookup", **{key: value for key, value in params.items() if value})


def look_up_card(
    integration: Integration,
    agent: Agent | None,
    visitor_id: str,
    *,
    at: datetime | None,
    ticket: str | None,
    helpdesk_agent_ref: str,
    base_url: str,
    refresh: bool = False,
) -> CardResult:
    """The card of ``visitor_id`` for ``agent`` (the dashboard agent the help desk's agent
    maps to; None: none does), asked of the integration's site (or every site), audited
    with the integration, the help-desk agent and the ticket.

    A Zendesk integration that trusts every agent of its account (an admin's explicit
    choice) shows the card with no linked agent too, audited under ``helpdesk_agent_ref``
    (the signed token's ``sub``), unless that Zendesk user is linked to a disabled agent."""
    if not may_see_card(integration, agent, helpdesk_agent_ref):
        return CardResult(403, sentence=no_agent_sentence(integration))
    cleaned = clean_visitor_id(visitor_id)
    if cleaned is None:
        where = "contact attribute" if integration.kind == "intercom" else "ticket field"
        return CardResult(
            400,
            sentence=(
                f"This {'conversation' if integration.kind == 'intercom' else 'ticket'} has no usable visitor ID "
                f"(the {where} “{shorten(visible_text(integration.visitor_field), 60) or 'visitorId'}” is empty or "
                f"longer than {MAX_VISITOR_ID_LENGTH} characters)."
            ),
        )
    service: VisitorService = current_app.extensions["visitor_service"]
    # A trusted Zendesk user with no agent of ours gets a budget share of their own.
    watcher = agent.id if agent is not None else f"{integration.slug}:{helpdesk_agent_ref}"
    answer = service.find(
        cleaned, site=integration.site_slug, refresh=refresh, watcher=watcher, request_id=requestlog.current_request_id()
    )
    for lookup in answer.search.lookups if answer.search else ():
        requestlog.note_upstream(lookup.upstream_calls, lookup.cache)
    try:
        audit.record_answer(
            db.engine,
            answer,
            agent_id=agent.id if agent is not None else None,
            visitor_id=cleaned,
            action="card",
            ticket=ticket,
            integration=integration.slug,
            helpdesk_agent=helpdesk_agent_ref,
        )
    except audit.AuditNotRecorded as error:
        current_app.extensions["failure_log"].report(
            "audit write failed", f"a card was not shown because its audit row could not be written ({error.cause})"
        )
        return CardResult(503, sentence=NOT_RECORDED)
    link = full_view_url(base_url, cleaned, at=at, ticket=ticket, site=answer.site)
    status = answer.status
    if answer.not_asked is not None:
        return CardResult(status, error_card(cleaned, answer.not_asked.sentence, link))
    result = answer.result
    assert result is not None
    if result.visitor is None:
        error = result.error
        sentence = f"{error.title}. {error.message}" if error else "PostMetric could not be asked."
        return CardResult(status, error_card(cleaned, sentence, link))
    visitor = result.visitor
    found, _anchors = signal_rules.find_signals(visitor, assign_page_views(visitor.sessions, visitor.page_views), at)
    return CardResult(status, build_card(visitor, moment=at, signals=found, full_view_url=link))


def may_see_card(integration: Integration, agent: Agent | None, helpdesk_agent_ref: str) -> bool:
    """An active agent of ours may; with none, only a Zendesk user of an account the
    integration trusts whole, and not one linked to a disabled agent."""
    if agent is not None:
        return bool(agent.active)
    trusted = integration.kind == "zendesk" and integration.trust_all_agents
    return trusted and zendesk_user_id_from(helpdesk_agent_ref) is not None and not zendesk_user_disabled(integration, helpdesk_agent_ref)


def no_agent_sentence(integration: Integration) -> str:
    """Why a help desk's agent sees no card: they are not an active dashboard agent."""
    if integration.kind == "intercom":
        return (
            "Your Intercom e-mail address is not an active Visitor Lookup agent, so the card is not shown. "
            "Ask a Visitor Lookup admin to add you (with the same e-mail address) or to re-enable your account."
        )
    if integration.kind == "zendesk":
        return (
            "Your Zendesk user is not linked to an active Visitor Lookup agent, so the card is not shown. "
            "Ask a Visitor Lookup admin to enter your Zendesk user ID on your agent."
        )
    return "The agent named is not an active Visitor Lookup agent, so the card is not shown."
