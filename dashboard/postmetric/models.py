"""Typed results of the PostMetric visitor API and the parser for its envelope.

The models read PostMetric's camelCase JSON (aliases) but can also be built with the
Python names (``populate_by_name``). Unknown fields are ignored. Coercion is lax where
it is harmless (``"5"`` becomes 5) and strict where the data would be meaningless
(``"five"`` fails).

``parse_visitor_payload`` is the way in from PostMetric, and it applies the rules the
models alone do not: every datetime becomes aware UTC (any ISO 8601 offset converted,
a naive time taken as UTC), empty text becomes None, and a missing page-view path "".
It reads a well-formed answer in one pass in pydantic-core (``model_validate_json``:
the models have no Python validators, so a 1,000-view visitor is never turned into
Python dicts first), then normalises it in one Python pass that copies
(``model_copy``) only the models a rule changes. Only when that strict read
refuses the answer does it apply the tolerant rules (null lists, missing counts or ID,
blank or basic-format times) to the parsed JSON and validate it again, which gives
either the visitor or a specific reason. Models built directly (tests,
``Visitor.empty``) take their values as given.
"""

from __future__ import annotations

import json
from datetime import datetime, timedelta, timezone
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, TypeAdapter, ValidationError

from .errors import InvalidResponse

__all__ = ["PageView", "Session", "Visitor", "parse_visitor_payload"]

UTC = timezone.utc
_ZERO = timedelta(0)
_CORE_DATETIME = TypeAdapter(datetime)


class _Model(BaseModel):
    model_config = ConfigDict(
        populate_by_name=True,
        extra="ignore",
        frozen=True,
        # IDs and paths from custom deployments are sometimes numbers.
        coerce_numbers_to_str=True,
    )


class PageView(_Model):
    """One page view. It carries no session ID (assign it by time)."""

    # A page view without a path is still shown (by title), never dropped: parsing
    # turns a null path into "".
    path: str | None = ""
    title: str | None = None
    timestamp: datetime
    referrer: str | None = None


class Session(_Model):
    """One visit: a window ``[first_visit_at, last_seen_at]`` with its device data."""

    session_id: str = Field(alias="sessionId")
    first_visit_at: datetime = Field(alias="firstVisitAt")
    last_seen_at: datetime = Field(alias="lastSeenAt")
    page_views: int = Field(0, alias="pageViews")
    duration: int | float | None = None
    """Session length in seconds as PostMetric reports it; None when missing."""
    device: str | None = None
    browser: str | None = None
    os: str | None = None
    country: str | None = None


class Visitor(_Model):
    """Everything PostMetric knows about one visitor.

    ``session_count``/``page_view_count`` are PostMetric's totals; the arrays may be
    shorter (capped by the server): see ``sessions_truncated``/``page_views_truncated``.
    Missing counts default to the length of the arrays.
    """

    visitor_id: str = Field(alias="visitorId")
    session_count: int = Field(alias="sessionCount")
    page_view_count: int = Field(alias="pageViewCount")
    first_visit: datetime | None = Field(None, alias="firstVisit")
    last_visit: datetime | None = Field(None, alias="lastVisit")
    sessions: list[Session] = Field(default_factory=list)
    page_views: list[PageView] = Field(default_factory=list, alias="pageViews")

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
# The rules parsing applies


class _NoUtcEquivalent(Exception):
    """A time pydantic read that cannot be moved to UTC (0001-01-01T00:00:00+01:00)."""


def _is_utc(value: datetime) -> bool:
    """Aware with offset zero: pydantic-core reads "Z" and "+00:00" as its own UTC."""
    return value.tzinfo is not None and value.tzinfo.utcoffset(None) == _ZERO


def _as_utc(value: datetime) -> datetime:
    """The time in UTC: kept as it is when it already is, taken as UTC when naive,
    converted otherwise."""
    if value.tzinfo is None:
        return value.replace(tzinfo=UTC)
    if _is_utc(value):
        return value
    try:
        return value.astimezone(UTC)
    except OverflowError:
        raise _NoUtcEquivalent from None


def _is_blank(value: str | None) -> bool:
    return value is not None and not value.strip()


def _normal_session(session: Session) -> Session:
    """The session in UTC with blank device data as None (a copy only when that changes it)."""
    changes: dict[str, Any] = {}
    for name in ("first_visit_at", "last_seen_at"):
        value = getattr(session, name)
        if not _is_utc(value):
            changes[name] = _as_utc(value)
    for name in ("device", "browser", "os", "country"):
        if _is_blank(getattr(session, name)):
            changes[name] = None
    return session.model_copy(update=changes) if changes else session


def _normal_page_views(views: list[PageView]) -> list[PageView]:
    """The page views in UTC, a null path "", blank title and referrer None. The usual
    view needs none of it and there can be 1,000s, so it is checked inline (the tests of
    ``_is_utc`` and ``_is_blank`` without the calls) and copied only when a rule changes it."""
    normal: list[PageView] = []
    for view in views:
        tzinfo, title, referrer = view.timestamp.tzinfo, view.title, view.referrer
        if (
            tzinfo is not None
            and tzinfo.utcoffset(None) == _ZERO
            and view.path is not None
            and (title is None or title.strip())
            and (referrer is None or referrer.strip())
        ):
            normal.append(view)
            continue
        normal.append(
            view.model_copy(
                update={
                    "timestamp": _as_utc(view.timestamp),
                    "path": view.path or "",
                    "title": None if _is_blank(title) else title,
                    "referrer": None if _is_blank(referrer) else referrer,
                }
            )
        )
    return normal


def _normalise(visitor: Visitor) -> Visitor:
    """The freshly validated visitor with the text and time rules applied; raise
    ``_NoUtcEquivalent`` for a time that cannot be moved to UTC."""
    return visitor.model_copy(
        update={
            "first_visit": None if visitor.first_visit is None else _as_utc(visitor.first_visit),
            "last_visit": None if visitor.last_visit is None else _as_utc(visitor.last_visit),
            "sessions": [_normal_session(session) for session in visitor.sessions],
            "page_views": _normal_page_views(visitor.page_views),
        }
    )


# Not a time to any reader: validation then reports "is not an ISO 8601 time" in its place.
_NO_UTC_EQUIVALENT = "(a time with no UTC equivalent)"


def _tolerant_time(value: Any) -> Any:
    """A time as ISO 8601 in UTC, read by pydantic-core or else by the standard library
    (ISO 8601's basic format, 20240115T103000Z, or surrounding spaces). A time neither
    reads is left as it is and one with no UTC equivalent is marked, for validation to
    report each in its place; anything but text is left to validation."""
    if not isinstance(value, str):
        return value
    try:
        parsed = _CORE_DATETIME.validate_python(value)
    except ValidationError:
        try:
            parsed = datetime.fromisoformat(value.strip())
        except ValueError:
            return value
    try:
        return _as_utc(parsed).isoformat()
    except _NoUtcEquivalent:
        return _NO_UTC_EQUIVALENT


def _tolerate(obj: Any, requested_id: str) -> Any:
    """The tolerant rules, applied to parsed JSON that the strict read refused: null
    lists are empty, a missing or null ID is the one asked for, missing or null counts
    are the lengths of the lists, blank visit times are None, and every time that can
    be read is written as ISO 8601 in UTC (see ``_tolerant_time``). Everything else is
    left for validation to report."""
    if not isinstance(obj, dict) or not isinstance(obj.get("data"), dict):
        return obj
    data = obj["data"]
    if data.get("visitorId") is None and data.get("visitor_id") is None:
        data["visitorId"] = requested_id
    for count, name, array_alias, array_name in (
        ("sessionCount", "session_count", "sessions", "sessions"),
        ("pageViewCount", "page_view_count", "pageViews", "page_views"),
    ):
        array = data.get(array_alias, data.get(array_name))
        if data.get(count) is None and data.get(name) is None:
            data[count] = len(array) if isinstance(array, list) else 0
        for key in (array_alias, array_name):
            if key in data and data[key] is None:
                data[key] = []
    for key in ("firstVisit", "first_visit", "lastVisit", "last_visit"):
        if isinstance(data.get(key), str):
            data[key] = _tolerant_time(data[key]) if data[key].strip() else None
    for items, time_keys in (
        (data.get("sessions"), ("firstVisitAt", "first_visit_at", "lastSeenAt", "last_seen_at")),
        (data.get("pageViews", data.get("page_views")), ("timestamp",)),
    ):
        for item in items if isinstance(items, list) else ():
            if isinstance(item, dict):
                for key in time_keys:
                    if key in item:
                        item[key] = _tolerant_time(item[key])
    return obj


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
        return _normalise(_Envelope.model_validate_json(raw).data)
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
    except _NoUtcEquivalent:
        pass
    return _read_tolerantly(raw, requested_id)


def _read_tolerantly(raw: bytes, requested_id: str) -> Visitor:
    """The second read, for JSON the strict one refused: the tolerant rules, then the
    same validation. Back as JSON, so that a number in a text field becomes the same
    text either way (1.0 is "1" to pydantic-core, "1.0" to Python)."""
    tolerated = json.dumps(_tolerate(json.loads(raw), requested_id))
    try:
        return _normalise(_Envelope.model_validate_json(tolerated).data)
    except ValidationError as exc:
        raise InvalidResponse(_reasons(exc.errors(include_url=False))) from None
    except _NoUtcEquivalent:  # pragma: no cover - the tolerant rules moved every time to UTC
        raise InvalidResponse("a time in it is not an ISO 8601 time") from None


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
