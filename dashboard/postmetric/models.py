"""Typed results of the PostMetric visitor API and the parser for its envelope.

The models read PostMetric's camelCase JSON (aliases) but can also be built with the
Python names (``populate_by_name``). Unknown fields are ignored. Coercion is lax where
it is harmless (``"5"`` becomes 5) and strict where the data would be meaningless
(``"five"`` fails). Every datetime is timezone-aware UTC after parsing: any ISO 8601
offset is converted, a naive time is taken as UTC.

``parse_visitor_payload`` validates the whole ``{"status": "success", "data": {...}}``
envelope in one pass in pydantic-core (``model_validate_json``), and only when that
fails looks closer to give a specific reason.
"""

from __future__ import annotations

import json
from datetime import datetime, timezone
from typing import Annotated, Any

from pydantic import (
    AfterValidator,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    ValidationError,
    ValidationInfo,
    WrapValidator,
    model_validator,
)

from .errors import InvalidResponse

__all__ = ["PageView", "Session", "Visitor", "parse_visitor_payload"]


def _utc(value: Any, handler) -> datetime:
    try:
        parsed = handler(value)
    except ValidationError:
        # pydantic-core does not read ISO 8601's basic format (20240115T103000Z);
        # the standard library does.
        if not isinstance(value, str):
            raise
        try:
            parsed = datetime.fromisoformat(value.strip())
        except ValueError:
            raise ValueError("not an ISO 8601 time") from None
    if parsed.tzinfo is None:
        return parsed.replace(tzinfo=timezone.utc)
    try:
        return parsed.astimezone(timezone.utc)
    except OverflowError:  # 0001-01-01T00:00:00+01:00 has no UTC equivalent
        raise ValueError("not an ISO 8601 time") from None


def _blank_to_none(value: Any) -> Any:
    if value is None or (isinstance(value, str) and not value.strip()):
        return None
    return value


def _null_to_empty_list(value: Any) -> Any:
    return [] if value is None else value


UtcDatetime = Annotated[datetime, WrapValidator(_utc)]
"""A datetime that is always aware and in UTC after validation."""

OptionalText = Annotated[str | None, BeforeValidator(_blank_to_none)]
"""Text that may be missing, null or empty; all three become None."""

OptionalUtcDatetime = Annotated[UtcDatetime | None, BeforeValidator(_blank_to_none)]


class _Model(BaseModel):
    model_config = ConfigDict(
        populate_by_name=True,
        extra="ignore",
        frozen=True,
        # IDs and paths from custom deployments are sometimes numbers.
        coerce_numbers_to_str=True,
    )


class PageView(_Model):
    """One page view. It carries no session ID (assign it by time).

    A visitor can have tens of thousands of these, so only the time stamp has a Python
    validator; ``_tidy_page_views`` applies the text rules of ``OptionalText`` (and a
    missing path as "") in one pass over the list, which parses a big visitor a third
    faster than a validator per field.
    """

    # A page view without a path is still shown (by title), never dropped.
    path: str | None = ""
    title: str | None = None
    timestamp: UtcDatetime
    referrer: str | None = None


def _tidy_page_views(views: list[PageView]) -> list[PageView]:
    for view in views:
        # Frozen models, still being built: set the fields directly.
        if view.path is None:
            object.__setattr__(view, "path", "")
        if view.title is not None and not view.title.strip():
            object.__setattr__(view, "title", None)
        if view.referrer is not None and not view.referrer.strip():
            object.__setattr__(view, "referrer", None)
    return views


class Session(_Model):
    """One visit: a window ``[first_visit_at, last_seen_at]`` with its device data."""

    session_id: str = Field(alias="sessionId")
    first_visit_at: UtcDatetime = Field(alias="firstVisitAt")
    last_seen_at: UtcDatetime = Field(alias="lastSeenAt")
    page_views: int = Field(0, alias="pageViews")
    duration: int | float | None = None
    """Session length in seconds as PostMetric reports it; None when missing."""
    device: OptionalText = None
    browser: OptionalText = None
    os: OptionalText = None
    country: OptionalText = None


class Visitor(_Model):
    """Everything PostMetric knows about one visitor.

    ``session_count``/``page_view_count`` are PostMetric's totals; the arrays may be
    shorter (capped by the server): see ``sessions_truncated``/``page_views_truncated``.
    Missing counts default to the length of the arrays.
    """

    visitor_id: str = Field(alias="visitorId")
    session_count: int = Field(alias="sessionCount")
    page_view_count: int = Field(alias="pageViewCount")
    first_visit: OptionalUtcDatetime = Field(None, alias="firstVisit")
    last_visit: OptionalUtcDatetime = Field(None, alias="lastVisit")
    sessions: Annotated[list[Session], BeforeValidator(_null_to_empty_list)] = Field(default_factory=list)
    page_views: Annotated[
        list[PageView], BeforeValidator(_null_to_empty_list), AfterValidator(_tidy_page_views)
    ] = Field(default_factory=list, alias="pageViews")

    @model_validator(mode="before")
    @classmethod
    def _defaults(cls, data: Any, info: ValidationInfo) -> Any:
        if not isinstance(data, dict):
            return data
        requested_id = (info.context or {}).get("requested_id")
        if requested_id is not None and data.get("visitorId") is None and data.get("visitor_id") is None:
            data = {**data, "visitorId": requested_id}
        for count, alias, name, array_alias, array_name in (
            ("sessionCount", "sessionCount", "session_count", "sessions", "sessions"),
            ("pageViewCount", "pageViewCount", "page_view_count", "pageViews", "page_views"),
        ):
            if data.get(alias) is None and data.get(name) is None:
                array = data.get(array_alias, data.get(array_name))
                data = {**data, count: len(array) if isinstance(array, list) else 0}
        return data

    @classmethod
    def empty(cls, visitor_id: str) -> Visitor:
        """The visitor PostMetric knows nothing about (also what a 404 envelope means)."""
        return cls(visitor_id=visitor_id, session_count=0, page_view_count=0)

    @property
    def is_unknown(self) -> bool:
        """PostMetric has no data for this ID."""
        return self.session_count == 0 and not self.sessions and not self.page_views

    @property
    def sessions_truncated(self) -> bool:
        """PostMetric counted more sessions than it returned ("showing N of M")."""
        return self.session_count > len(self.sessions)

    @property
    def page_views_truncated(self) -> bool:
        """PostMetric counted more page views than it returned."""
        return self.page_view_count > len(self.page_views)


class _Envelope(BaseModel):
    model_config = ConfigDict(extra="ignore")

    status: Any = None
    data: Visitor


# ---------------------------------------------------------------------------
# Parsing with specific reasons


_TYPE_REASONS = {
    "int_parsing": "is not a whole number",
    "int_type": "is not a whole number",
    "int_from_float": "is not a whole number",
    "float_parsing": "is not a number",
    "float_type": "is not a number",
    "string_type": "is not text",
    "list_type": "is not a list",
    "model_type": "is not an object",
    "model_attributes_type": "is not an object",
    "dict_type": "is not an object",
    "datetime_parsing": "is not an ISO 8601 time",
    "datetime_from_date_parsing": "is not an ISO 8601 time",
    "datetime_type": "is not an ISO 8601 time",
    "missing": "is missing",
}


def _path(loc: tuple[Any, ...]) -> str:
    out = ""
    for part in loc:
        if isinstance(part, int):
            out += f"[{part}]"
        else:
            out += f".{part}" if out else str(part)
    return out or "the body"


_UNION_TAGS = frozenset({"int", "float", "str", "none", "datetime"})


def _describe(error: dict[str, Any]) -> str:
    # Drop pydantic's union/validator labels so the path reads like the JSON.
    loc = tuple(
        p for p in error.get("loc", ()) if isinstance(p, int) or (p not in _UNION_TAGS and "[" not in p)
    )
    where = _path(loc)
    etype = error.get("type", "")
    if etype != "missing" and error.get("input", ...) is None:
        what = "is null"
    elif etype == "value_error" and "ISO 8601" in str(error.get("msg", "")):
        what = "is not an ISO 8601 time"
    elif etype in ("int_parsing", "float_parsing") and len(error.get("loc", ())) > len(loc):
        what = "is not a number"
    else:
        # pydantic's messages never quote the input; keep the first line, short.
        what = _TYPE_REASONS.get(etype) or str(error.get("msg", "is invalid")).split("\n")[0][:120]
    return f"{where} {what}"


def _reasons(errors: list[dict[str, Any]]) -> str:
    reasons: list[str] = []
    for error in errors:
        reason = _describe(error)
        if reason not in reasons:
            reasons.append(reason)
    shown = "; ".join(reasons[:3])
    return shown + (f" (and {len(reasons) - 3} more problems)" if len(reasons) > 3 else "")


def _json_reason(body: bytes, message: str) -> tuple[str, bool]:
    """Reason for a body that is not JSON, and whether a retry might help."""
    head = body.lstrip()[:64].lower()
    if head.startswith((b"<!doctype", b"<html", b"<?xml", b"<")):
        return "it is an HTML page, not PostMetric's JSON (a proxy or web server answered)", True
    if "EOF" in message:
        return "the JSON is truncated (the answer was cut off)", True
    return "it is not JSON", False


def parse_visitor_payload(body: bytes | str, requested_id: str) -> Visitor:
    """Parse PostMetric's success envelope into a ``Visitor``.

    Raises ``InvalidResponse`` with a specific ``reason`` when the body is empty,
    not JSON or truncated, an HTML page, not a JSON object, lacks ``data``, or has
    wrong types. A ``data`` object without ``visitorId`` takes ``requested_id``.
    """
    raw = body.encode("utf-8") if isinstance(body, str) else bytes(body)
    if not raw.strip():
        raise InvalidResponse("the body is empty", retryable=True)
    try:
        envelope = _Envelope.model_validate_json(raw, context={"requested_id": requested_id})
    except ValidationError as exc:
        errors = exc.errors(include_url=False)
        first = errors[0]
        if first["type"] == "json_invalid":
            reason, retryable = _json_reason(raw, str(first.get("ctx", {}).get("error", first.get("msg", ""))))
            raise InvalidResponse(reason, retryable=retryable) from None
        if first["type"] == "model_type" and not first["loc"]:
            raise InvalidResponse(
                f"the JSON is {_json_kind(first.get('input'))}, not an object"
            ) from None
        if first["loc"] == ("data",) and first["type"] == "missing":
            raise InvalidResponse(_missing_data_reason(raw)) from None
        raise InvalidResponse(_reasons(errors)) from None
    return envelope.data


def _json_kind(value: Any) -> str:
    if isinstance(value, list):
        return "a list"
    if value is None:
        return "null"
    if isinstance(value, str):
        return "a string"
    if isinstance(value, bool):
        return "a boolean"
    if isinstance(value, (int, float)):
        return "a number"
    return "not an object"


def _missing_data_reason(raw: bytes) -> str:
    try:
        obj = json.loads(raw)
    except ValueError:  # pragma: no cover - already valid JSON for pydantic
        obj = None
    if isinstance(obj, dict) and (obj.get("status") == "error" or isinstance(obj.get("error"), dict)):
        return "it is an error answer without data"
    return "the JSON has no \"data\" object"
