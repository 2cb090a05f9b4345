"""Parsing PostMetric's visitor envelope into typed models."""
from __future__ import annotations

import copy
import json
import time
from datetime import datetime, timedelta, timezone

import pytest
from pydantic import ValidationError

from dashboard.postmetric.errors import InvalidResponse
from dashboard.postmetric.models import PageView, Session, Visitor, _read_tolerantly, parse_visitor_payload

DOCUMENTED = {
    "status": "success",
    "data": {
        "visitorId": "visitor_123",
        "sessionCount": 5,
        "pageViewCount": 42,
        "firstVisit": "2024-01-15T10:30:00Z",
        "lastVisit": "2024-01-20T14:22:00Z",
        "sessions": [
            {
                "sessionId": "session_456",
                "firstVisitAt": "2024-01-15T10:30:00Z",
                "lastSeenAt": "2024-01-15T10:45:00Z",
                "pageViews": 8,
                "duration": 900,
                "device": "desktop",
                "browser": "chrome",
                "os": "windows",
                "country": "US",
            }
        ],
        "pageViews": [
            {
                "path": "/",
                "title": "Homepage",
                "timestamp": "2024-01-15T10:30:00Z",
                "referrer": "https://google.com",
            }
        ],
    },
}


def utc(*args: int) -> datetime:
    return datetime(*args, tzinfo=timezone.utc)


def is_utc(value: datetime) -> bool:
    """Aware and in UTC: timezone.utc, or pydantic-core's own UTC for a time read as such."""
    return value.utcoffset() == timedelta(0) and value.tzname() == "UTC"


def payload(**changes) -> dict:
    body = copy.deepcopy(DOCUMENTED)
    body["data"].update(changes)
    return body


def parse(body: dict | bytes | str, requested_id: str = "visitor_123") -> Visitor:
    if isinstance(body, dict):
        body = json.dumps(body)
    return parse_visitor_payload(body, requested_id)


def test_documented_example():
    visitor = parse(DOCUMENTED)
    assert visitor.visitor_id == "visitor_123"
    assert (visitor.session_count, visitor.page_view_count) == (5, 42)
    assert visitor.first_visit == utc(2024, 1, 15, 10, 30)
    assert visitor.last_visit == utc(2024, 1, 20, 14, 22)
    assert visitor.sessions == [
        Session(
            session_id="session_456",
            first_visit_at=utc(2024, 1, 15, 10, 30),
            last_seen_at=utc(2024, 1, 15, 10, 45),
            page_views=8,
            duration=900,
            device="desktop",
            browser="chrome",
            os="windows",
            country="US",
        )
    ]
    assert visitor.page_views == [
        PageView(path="/", title="Homepage", timestamp=utc(2024, 1, 15, 10, 30), referrer="https://google.com")
    ]
    assert visitor.sessions_truncated and visitor.page_views_truncated
    assert not visitor.is_unknown


def test_bytes_and_str_bodies_parse_alike():
    raw = json.dumps(DOCUMENTED)
    assert parse_visitor_payload(raw, "x") == parse_visitor_payload(raw.encode(), "x")


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("2024-01-15T10:30:00.000Z", utc(2024, 1, 15, 10, 30)),
        ("2024-01-15T10:30:00.123Z", utc(2024, 1, 15, 10, 30, 0, 123000)),
        ("2024-01-15T10:30:00.123456789Z", utc(2024, 1, 15, 10, 30, 0, 123456)),
        ("2024-01-15T12:30:00+02:00", utc(2024, 1, 15, 10, 30)),
        ("2024-01-15T05:00:00.5-05:30", utc(2024, 1, 15, 10, 30, 0, 500000)),
        ("2024-01-15T10:30:00", utc(2024, 1, 15, 10, 30)),  # naive: taken as UTC
        ("2024-01-15 10:30:00", utc(2024, 1, 15, 10, 30)),
        ("20240115T103000Z", utc(2024, 1, 15, 10, 30)),  # ISO 8601 basic format
    ],
)
def test_timestamps_become_aware_utc(text, expected):
    body = payload(pageViews=[{"path": "/", "timestamp": text}], firstVisit=text)
    visitor = parse(body)
    for value in (visitor.page_views[0].timestamp, visitor.first_visit):
        assert value == expected
        assert is_utc(value)


def test_unknown_visitor_shape_from_the_implementation():
    body = {"status": "success", "data": {"visitorId": "v", "sessionCount": 0, "pageViewCount": 0, "sessions": [], "pageViews": []}}
    visitor = parse(body, "v")
    assert visitor.is_unknown
    assert visitor.first_visit is None and visitor.last_visit is None
    assert not visitor.sessions_truncated and not visitor.page_views_truncated


def test_empty_visitor_matches_the_unknown_shape():
    empty = Visitor.empty("a b&c")
    assert empty.visitor_id == "a b&c"
    assert (empty.session_count, empty.page_view_count, empty.sessions, empty.page_views) == (0, 0, [], [])
    assert empty.first_visit is None and empty.last_visit is None and empty.is_unknown


@pytest.mark.parametrize("value", ["omit", None, ""])
def test_optional_fields_missing_null_or_empty_become_none(value):
    view = {"path": "/", "timestamp": "2024-01-15T10:30:00Z", "title": value, "referrer": value}
    session = {k: v for k, v in DOCUMENTED["data"]["sessions"][0].items()}
    for name in ("device", "browser", "os", "country"):
        session[name] = value
    visitor_fields = {"firstVisit": value, "lastVisit": value}
    if value == "omit":
        view = {"path": "/", "timestamp": "2024-01-15T10:30:00Z"}
        session = {k: v for k, v in session.items() if k not in ("device", "browser", "os", "country", "duration")}
        visitor_fields = {}
    body = payload(pageViews=[view], sessions=[session], **visitor_fields)
    if value == "omit":
        del body["data"]["firstVisit"], body["data"]["lastVisit"]
    visitor = parse(body)
    page_view, parsed_session = visitor.page_views[0], visitor.sessions[0]
    assert page_view.title is None and page_view.referrer is None
    assert (parsed_session.device, parsed_session.browser, parsed_session.os, parsed_session.country) == (None,) * 4
    assert visitor.first_visit is None and visitor.last_visit is None
    if value == "omit":
        assert parsed_session.duration is None


def test_extra_fields_are_ignored():
    body = payload(newThing={"a": 1}, sessions=[{**DOCUMENTED["data"]["sessions"][0], "utm": "x"}])
    body["meta"] = {"requestId": "r"}
    body["data"]["pageViews"][0]["sessionId"] = "s-1"
    visitor = parse(body)
    assert visitor.sessions[0].session_id == "session_456"
    assert not hasattr(visitor, "newThing")


def test_numeric_strings_coerce():
    body = payload(sessionCount="5", pageViewCount="42")
    body["data"]["sessions"][0].update(pageViews="8", duration="900.5")
    visitor = parse(body)
    assert (visitor.session_count, visitor.page_view_count) == (5, 42)
    assert visitor.sessions[0].page_views == 8
    assert visitor.sessions[0].duration == 900.5


def test_integer_duration_stays_int():
    assert parse(DOCUMENTED).sessions[0].duration == 900
    assert isinstance(parse(DOCUMENTED).sessions[0].duration, int)


def test_missing_counts_default_to_array_lengths_and_missing_id_to_requested():
    body = payload()
    for name in ("sessionCount", "pageViewCount", "visitorId"):
        del body["data"][name]
    visitor = parse(body, "asked-for")
    assert visitor.visitor_id == "asked-for"
    assert (visitor.session_count, visitor.page_view_count) == (1, 1)


def test_python_names_also_work():
    view = PageView(path="/a", timestamp="2024-01-15T12:30:00+02:00")
    assert view.timestamp == utc(2024, 1, 15, 10, 30)
    assert view.title is None


def test_only_the_parser_normalises_models_built_directly_take_values_as_given():
    view = PageView(path=None, title=" ", timestamp="2024-01-15T12:30:00+02:00")
    assert view.timestamp.utcoffset().total_seconds() == 7200
    assert (view.path, view.title) == (None, " ")
    parsed = parse(payload(pageViews=[{"path": None, "title": " ", "timestamp": "2024-01-15T12:30:00+02:00"}])).page_views[0]
    assert (parsed.path, parsed.title, parsed.timestamp) == ("", None, utc(2024, 1, 15, 10, 30))
    assert is_utc(parsed.timestamp)
    session = parse(payload(sessions=[{**DOCUMENTED["data"]["sessions"][0], "firstVisitAt": "2024-01-15T05:30:00-05:00"}])).sessions[0]
    assert session.first_visit_at == utc(2024, 1, 15, 10, 30) and is_utc(session.first_visit_at)
    assert is_utc(session.last_seen_at)


def tolerant_parse(body: bytes, requested_id: str) -> Visitor:
    """The second read on its own: the tolerant rules, then validation, then the pass."""
    return _read_tolerantly(body, requested_id)


@pytest.mark.parametrize(
    "body",
    [
        json.dumps(DOCUMENTED).encode(),
        json.dumps(payload(pageViews=[{"path": None, "title": "", "timestamp": "2024-01-15T12:30:00+02:00", "referrer": " "}])).encode(),
        json.dumps(payload(sessions=[{**DOCUMENTED["data"]["sessions"][0], "device": "", "firstVisitAt": "2024-01-15T05:30:00-05:00"}])).encode(),
    ],
    ids=["documented", "page-view-rules", "session-rules"],
)
def test_the_strict_read_and_the_tolerant_one_agree_on_a_well_formed_answer(body):
    assert parse_visitor_payload(body, "visitor_123") == tolerant_parse(body, "visitor_123")


def test_the_strict_read_and_the_tolerant_one_agree_on_a_big_answer():
    body = big_body(page_views=2_000, sessions=100)
    assert parse_visitor_payload(body, "big") == tolerant_parse(body, "big")


def test_an_answer_only_the_tolerant_rules_read_gives_the_same_visitor_as_its_tidy_form():
    tidy = copy.deepcopy(DOCUMENTED)
    untidy = copy.deepcopy(DOCUMENTED)
    untidy["data"]["pageViews"][0]["timestamp"] = "20240115T103000Z"  # basic format
    untidy["data"]["firstVisit"] = " 2024-01-15T10:30:00Z "
    assert parse(untidy) == parse(tidy)


@pytest.mark.parametrize(
    ("where", "reason"),
    [
        (lambda d: d["pageViews"][0], "data.pageViews[0].timestamp is not an ISO 8601 time"),
        (lambda d: d["sessions"][0], "data.sessions[0].firstVisitAt is not an ISO 8601 time"),
        (lambda d: d, "data.firstVisit is not an ISO 8601 time"),
    ],
)
def test_a_time_without_a_utc_equivalent_is_named_in_the_reason(where, reason):
    body = copy.deepcopy(DOCUMENTED)
    target = where(body["data"])
    key = next(k for k in ("timestamp", "firstVisitAt", "firstVisit") if k in target)
    target[key] = "0001-01-01T00:00:00+01:00"
    with pytest.raises(InvalidResponse) as info:
        parse(body)
    assert info.value.reason == reason


@pytest.mark.parametrize(
    ("body", "reason"),
    [
        (b"", "empty"),
        (b"   \n", "empty"),
        (b'{"status":"success","data":{"visitorId":"v","sessionCount":1', "truncated"),
        (b"<!DOCTYPE html><html><body>502 Bad Gateway</body></html>", "HTML"),
        (b"<html><body>oops</body></html>", "HTML"),
        (b"Service temporarily unavailable", "not JSON"),
        (b"\xff\xfe\x00", "not JSON"),
        (b"[1, 2]", "a list, not an object"),
        (b"null", "null, not an object"),
        (b'"success"', "a string, not an object"),
        (b'{"status":"success"}', 'no "data"'),
        (b'{"status":"error","error":{"code":500,"message":"boom"}}', "error answer without data"),
        (b'{"status":"success","data":null}', "data is null"),
        (b'{"status":"success","data":[]}', "data is not an object"),
    ],
)
def test_unusable_bodies_raise_invalid_response_with_a_reason(body, reason):
    with pytest.raises(InvalidResponse) as info:
        parse_visitor_payload(body, "v")
    assert reason in info.value.reason
    assert info.value.kind == "invalid_response"
    assert info.value.reason in str(info.value)


@pytest.mark.parametrize(
    ("change", "reason"),
    [
        (lambda d: d.update(sessionCount="five"), "data.sessionCount is not a whole number"),
        (lambda d: d.update(pageViewCount=1.5), "data.pageViewCount is not a whole number"),
        (lambda d: d.update(sessions={"a": 1}), "data.sessions is not a list"),
        (lambda d: d.update(pageViews="none"), "data.pageViews is not a list"),
        (lambda d: d["sessions"].append(None), "data.sessions[1] is null"),
        (lambda d: d["pageViews"].insert(0, None), "data.pageViews[0] is null"),
        (lambda d: d["pageViews"].append("x"), "data.pageViews[1] is not an object"),
        (lambda d: d["pageViews"][0].update(timestamp="yesterday"), "data.pageViews[0].timestamp is not an ISO 8601 time"),
        (lambda d: d["pageViews"][0].update(timestamp=None), "data.pageViews[0].timestamp is null"),
        (lambda d: d["pageViews"][0].pop("timestamp"), "data.pageViews[0].timestamp is missing"),
        (lambda d: d["sessions"][0].update(duration="long"), "data.sessions[0].duration is not a number"),
        (lambda d: d["sessions"][0].pop("sessionId"), "data.sessions[0].sessionId is missing"),
        (lambda d: d["sessions"][0].update(country=["US"]), "data.sessions[0].country is not text"),
        (lambda d: d.update(firstVisit="soon"), "data.firstVisit is not an ISO 8601 time"),
    ],
)
def test_wrong_types_raise_invalid_response(change, reason):
    body = copy.deepcopy(DOCUMENTED)
    change(body["data"])
    with pytest.raises(InvalidResponse) as info:
        parse(body)
    assert info.value.reason == reason


def test_reason_never_quotes_the_body():
    secretish = "pm_" + "ab" * 32
    body = copy.deepcopy(DOCUMENTED)
    body["data"]["sessionCount"] = secretish
    body["data"]["pageViews"][0]["timestamp"] = "x" * 500
    with pytest.raises(InvalidResponse) as info:
        parse(body)
    text = str(info.value) + repr(info.value)
    assert secretish not in text
    assert "xxxxxxxx" not in text


def test_many_problems_are_summarised():
    body = copy.deepcopy(DOCUMENTED)
    body["data"]["pageViews"] = [None] * 10
    with pytest.raises(InvalidResponse) as info:
        parse(body)
    assert info.value.reason.endswith("(and 7 more problems)")


def test_hostile_strings_are_kept_verbatim():
    title = "<script>alert(1)</script>\u202e" + "T" * 10_000
    body = payload(pageViews=[{"path": "/x?a=<b>", "title": title, "referrer": "javascript:alert(1)", "timestamp": "2024-01-15T10:30:00Z"}])
    view = parse(body).page_views[0]
    assert view.title == title and view.referrer == "javascript:alert(1)"


def test_models_are_immutable():
    visitor = parse(DOCUMENTED)
    with pytest.raises(ValidationError):
        visitor.session_count = 1  # type: ignore[misc]


def test_the_normalised_values_are_the_models_own_everywhere_they_are_read():
    """Parsing copies what its rules change (no writes behind a frozen model's back), so
    attribute access, model_dump, a JSON round trip and equality all see the same
    normalised values, and the parsed models stay frozen."""
    session = {**DOCUMENTED["data"]["sessions"][0], "lastSeenAt": "2024-01-15T10:45:00", "device": " "}
    views = [
        {"path": None, "title": "", "referrer": " ", "timestamp": "2024-01-15T05:00:00-05:30"},
        {"path": "/", "title": "Home", "timestamp": "2024-01-15T10:31:00+00:00"},
    ]
    visitor = parse(payload(firstVisit="2024-01-15T12:30:00+02:00", sessions=[session], pageViews=views))
    dumped = visitor.model_dump()
    assert dumped["first_visit"] == visitor.first_visit == utc(2024, 1, 15, 10, 30)
    assert dumped["sessions"][0]["last_seen_at"] == utc(2024, 1, 15, 10, 45) and dumped["sessions"][0]["device"] is None
    assert dumped["page_views"] == [
        {"path": "", "title": None, "timestamp": utc(2024, 1, 15, 10, 30), "referrer": None},
        {"path": "/", "title": "Home", "timestamp": utc(2024, 1, 15, 10, 31), "referrer": None},
    ]
    assert all(is_utc(value) for value in (visitor.first_visit, visitor.sessions[0].last_seen_at, visitor.page_views[0].timestamp))
    assert Visitor.model_validate_json(visitor.model_dump_json(by_alias=True)) == visitor
    with pytest.raises(ValidationError):
        visitor.page_views[0].path = "/elsewhere"  # type: ignore[misc]


def big_body(page_views: int = 20_000, sessions: int = 1_000) -> bytes:
    views = [
        {
            "path": f"/products/{i}",
            "title": f"Product {i}" if i % 4 else None,
            "timestamp": f"2024-01-{1 + i % 28:02d}T10:{i % 60:02d}:00.{i % 1000:03d}Z",
            **({"referrer": "https://google.com/search?q=x"} if i % 3 else {}),
        }
        for i in range(page_views)
    ]
    sess = [
        {
            "sessionId": f"s{i}",
            "firstVisitAt": "2024-01-15T10:30:00.000Z",
            "lastSeenAt": "2024-01-15T10:45:00.000Z",
            "pageViews": 20,
            "duration": 900,
            "device": "mobile",
            "browser": "safari",
            "os": "ios",
            "country": "FR",
        }
        for i in range(sessions)
    ]
    return json.dumps(
        {"status": "success", "data": {"visitorId": "big", "sessionCount": 5000, "pageViewCount": 50_000, "sessions": sess, "pageViews": views}}
    ).encode()


def test_twenty_thousand_page_views_parse_quickly():
    body = big_body()
    started = time.perf_counter()
    visitor = parse_visitor_payload(body, "big")
    elapsed = time.perf_counter() - started
    assert len(visitor.page_views) == 20_000 and len(visitor.sessions) == 1_000
    assert visitor.page_views_truncated and visitor.sessions_truncated
    assert visitor.page_views[1].title == "Product 1" and visitor.page_views[0].title is None
    assert visitor.page_views[0].referrer is None and visitor.page_views[1].referrer is not None
    # ~0.1 s on a laptop; generous for slow CI.
    assert elapsed < 2.0, f"parsing took {elapsed:.2f} s"


def test_a_time_stamp_without_a_utc_equivalent_is_an_unreadable_answer():
    body = copy.deepcopy(DOCUMENTED)
    body["data"]["pageViews"][0]["timestamp"] = "0001-01-01T00:00:00+01:00"
    with pytest.raises(InvalidResponse):
        parse(body)


@pytest.mark.parametrize("number", [1.0, -0.0, 1e16, 5.5, 7])
def test_a_number_in_a_text_field_becomes_the_same_text_whichever_read_takes_it(number):
    session = {**DOCUMENTED["data"]["sessions"][0], "sessionId": number, "device": number}
    strict = parse(payload(visitorId=number, sessions=[session], pageViews=[{"path": number, "timestamp": "2024-01-15T10:30:00Z"}]))
    tolerant = parse(payload(visitorId=number, sessionCount=None, sessions=[session], pageViews=[{"path": number, "timestamp": "2024-01-15T10:30:00Z"}]))
    assert strict.sessions[0].session_id == tolerant.sessions[0].session_id
    assert (strict.visitor_id, strict.sessions[0].device, strict.page_views[0].path) == (
        tolerant.visitor_id, tolerant.sessions[0].device, tolerant.page_views[0].path
    )


def test_every_time_without_a_utc_equivalent_is_listed_with_the_other_problems():
    body = copy.deepcopy(DOCUMENTED)
    body["data"]["sessionCount"] = "x"
    body["data"]["firstVisit"] = "0001-01-01T00:00:00+01:00"
    body["data"]["pageViews"][0]["timestamp"] = "0001-01-01T00:30:00+02:00"
    with pytest.raises(InvalidResponse) as info:
        parse(body)
    assert info.value.reason == (
        "data.sessionCount is not a whole number; data.firstVisit is not an ISO 8601 time; "
        "data.pageViews[0].timestamp is not an ISO 8601 time"
    )
