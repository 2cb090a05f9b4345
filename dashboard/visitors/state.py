"""The visitor view's state, which lives in the URL so any view can be shared."""
from __future__ import annotations

import re
from dataclasses import dataclass, replace
from typing import Mapping
from urllib.parse import parse_qs, unquote, urlencode, urlsplit

from flask import has_request_context, request, url_for

from dashboard.timeline import normalise_order

MAX_VISITOR_ID_LENGTH = 512
# What a search box takes in at all: enough for a long URL or a whole Cookie header.
MAX_PASTE_LENGTH = 8192
# IDs made only of these characters survive as a path segment in every browser and
# proxy; any other ID (".", "..", "/", "\", "?", "#", "%", spaces, non-ASCII) uses the
# query form /visitor?visitorId=..., which carries any string.
PATH_SAFE_ID = re.compile(r"[A-Za-z0-9_~-][A-Za-z0-9._~-]*")


class InvalidVisitorId(ValueError):
    """A visitor ID that cannot be looked up, with the sentence to show."""


def clean_visitor_id(raw: str | None) -> str:
    """Trim surrounding white space only; refuse empty and over-long IDs."""
    visitor_id = (raw or "").strip()
    if not visitor_id:
        raise InvalidVisitorId("Enter a visitor ID to look up, for example visitor_123.")
    if len(visitor_id) > MAX_VISITOR_ID_LENGTH:
        raise InvalidVisitorId(
            f"That visitor ID is {len(visitor_id):,} characters long; PostMetric IDs are at most "
            f"{MAX_VISITOR_ID_LENGTH} characters. Check what was pasted."
        )
    return visitor_id


COOKIE_NAME = "_pm_vid"
# The cookie's value ends at the next cookie, query parameter, fragment, quote or space.
_COOKIE_VALUE = re.compile(re.escape(COOKIE_NAME) + r"=([^;&#\s\"',]*)")
_DASHBOARD_PATH = re.compile(r"/visitors/([^/]+)/?$")


def visitor_id_in(pasted: str | None) -> str:
    """The visitor ID inside what an agent pasted, before :func:`clean_visitor_id`.

    Takes the value out of a cookie string (``_pm_vid=...``, also a whole Cookie header),
    of a URL holding ``_pm_vid=`` or ``visitorId=`` in its query, or of a dashboard link
    (``/visitors/<id>`` or ``/visitor?visitorId=``); anything else is the ID itself,
    trimmed. Only search input goes through here: the canonical ``/visitor?visitorId=``
    address carries any ID exactly, even one that looks like a URL.
    """
    text = (pasted or "").strip()
    if len(text) > MAX_PASTE_LENGTH:
        return text  # clean_visitor_id refuses it for its length
    cookie = _COOKIE_VALUE.search(text)
    if cookie:
        return unquote(cookie.group(1)).strip()
    try:
        parts = urlsplit(text)
    except ValueError:  # "http://[x": a link whose host cannot be read
        raise InvalidVisitorId(
            "That looks like a link, but it could not be read (check its host part). Paste the "
            "visitor ID itself, or the whole link as it was copied."
        ) from None
    if (parts.scheme in {"http", "https"} and parts.netloc) or text.startswith("/"):
        query = parse_qs(parts.query, keep_blank_values=True)
        if "visitorId" in query:
            return query["visitorId"][0].strip()
        path = _DASHBOARD_PATH.search(parts.path)
        if path:
            return unquote(path.group(1)).strip()
    return text


def visitor_id_from_search(pasted: str | None) -> str:
    """Forgiving search: the ID out of pasted text, then trimmed and checked."""
    return clean_visitor_id(visitor_id_in(pasted))


@dataclass(frozen=True)
class ViewState:
    visitor_id: str
    session: str | None = None
    q: str = ""
    order: str = "desc"
    at: str | None = None
    ticket: str | None = None
    site: str | None = None
    live: bool = False

    @classmethod
    def from_args(cls, visitor_id: str, args: Mapping[str, str]) -> "ViewState":
        # Each value is repeated in every link of the page: cap them so that one long
        # parameter cannot multiply into megabytes (no real value comes near the caps).
        def capped(name: str, limit: int) -> str | None:
            return (args.get(name) or "")[:limit] or None

        return cls(
            visitor_id=visitor_id,
            session=capped("session", 256),
            q=(args.get("q") or "")[:200],
            order=normalise_order(args.get("order")),
            at=capped("at", 64),
            ticket=capped("ticket", 200),
            site=capped("site", 100),
            live=args.get("live") == "1",
        )

    def params(self) -> dict[str, str]:
        """The query parameters of this view, defaults left out so URLs stay short."""
        values = {
            "site": self.site,
            "session": self.session,
            "q": self.q,
            "order": None if self.order == "desc" else self.order,
            "at": self.at,
            "ticket": self.ticket,
            "live": "1" if self.live else None,
        }
        return {key: value for key, value in values.items() if value}

    def with_changes(self, **changes: object) -> "ViewState":
        return replace(self, **changes)

    def form_action(self) -> tuple[str, dict[str, str]]:
        """A GET form's action and the hidden fields that carry the rest of the view.

        A GET form drops the action's own query string, so everything but the fields the
        form edits (``q``, ``session`` and ``order``) travels as hidden inputs.
        """
        hidden = {key: value for key, value in self.params().items() if key not in {"q", "session", "order"}}
        if PATH_SAFE_ID.fullmatch(self.visitor_id):
            return url_for("visitors.show", visitor_id=self.visitor_id), hidden
        return url_for("visitors.lookup"), {"visitorId": self.visitor_id, **hidden}

    def url(self, **extra: object) -> str:
        """The URL that opens exactly this view (``extra`` adds one-off parameters).

        Built by hand rather than with url_for: a big visitor's page holds hundreds of
        these links, and url_for's rule matching was a tenth of its render time. The
        two paths are the routes of visitors.show and visitors.lookup (tests pin them).
        """
        params = self.params()
        params.update({key: str(value) for key, value in extra.items() if value not in (None, "")})
        root = request.script_root if has_request_context() else ""
        if PATH_SAFE_ID.fullmatch(self.visitor_id):
            path = f"{root}/visitors/{self.visitor_id}"
        else:
            path = f"{root}/visitor"
            params = {"visitorId": self.visitor_id, **params}
        return f"{path}?{urlencode(params)}" if params else path

    def export_url(self, fmt: str) -> str:
        """The download of this view's timeline, as filtered, in ``fmt`` (csv or json)."""
        params = {key: value for key, value in self.params().items() if key != "live"}
        return url_for("visitors.export", visitorId=self.visitor_id, format=fmt, **params)
