"""The visitor view's state, which lives in the URL so any view can be shared."""
from __future__ import annotations

import re
from dataclasses import dataclass, replace
from typing import Mapping
from urllib.parse import urlencode

from flask import has_request_context, request, url_for

from dashboard.timeline import normalise_order

MAX_VISITOR_ID_LENGTH = 512
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


@dataclass(frozen=True)
class ViewState:
    visitor_id: str
    session: str | None = None
    q: str = ""
    order: str = "desc"
    at: str | None = None
    ticket: str | None = None
    site: str | None = None

    @classmethod
    def from_args(cls, visitor_id: str, args: Mapping[str, str]) -> "ViewState":
        return cls(
            visitor_id=visitor_id,
            session=args.get("session") or None,
            q=(args.get("q") or "")[:200],
            order=normalise_order(args.get("order")),
            at=args.get("at") or None,
            ticket=(args.get("ticket") or None),
            site=args.get("site") or None,
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
        }
        return {key: value for key, value in values.items() if value}

    def with_changes(self, **changes: object) -> "ViewState":
        return replace(self, **changes)

    def form_action(self) -> tuple[str, dict[str, str]]:
        """A GET form's action and the hidden fields that carry the rest of the view.

        A GET form drops the action's own query string, so everything but the fields the
        form edits (``q`` and ``order``) travels as hidden inputs.
        """
        hidden = {key: value for key, value in self.params().items() if key not in {"q", "order"}}
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
