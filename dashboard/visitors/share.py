"""What leaves the dashboard: the ticket summary, CSV and JSON exports, their file names.

Pure functions of a visitor, the filtered timeline and the agent's time zone; the route
only adds the absolute link and sends the bytes.
"""
from __future__ import annotations

import csv
import heapq
import io
import json
from datetime import datetime
from typing import Iterable, Sequence

from werkzeug.utils import secure_filename

from dashboard.formatting import format_datetime, iso, neutralise_cell, shorten, visible_text
from dashboard.postmetric.models import Visitor
from dashboard.timeline import ContactContext, TimelineEntry, contact_label

SUMMARY_PAGES = 10
EXPORT_COLUMNS = ("timestamp_utc", "time_local", "session_id", "path", "title", "referrer", "relative_to_contact")


def page_line(entry: TimelineEntry, zone: str) -> str:
    view = entry.view
    title = shorten(visible_text(view.title), 80) if view.title else ""
    path = shorten(visible_text(view.path), 120)
    return f"  {format_datetime(view.timestamp, zone)}  {title + '  ' if title else ''}{path}"


def ticket_summary(
    visitor: Visitor,
    entries: Sequence[TimelineEntry],
    *,
    zone: str,
    link: str,
    contact: ContactContext | None = None,
    filters: str = "",
) -> str:
    """A plain-text note for the ticket: who, when, where they were, the last pages, the link.

    ``entries`` is the timeline as filtered (in any order); with a contact moment the
    pages listed are the last ones up to it, which is what led to the ticket.
    """
    lines = [
        f"PostMetric visitor: {visible_text(visitor.visitor_id)}",
        f"First visit: {format_datetime(visitor.first_visit, zone)}",
        f"Last visit: {format_datetime(visitor.last_visit, zone)}",
        f"Sessions: {visitor.session_count:,} · Page views: {visitor.page_view_count:,}",
    ]
    chosen: Iterable[TimelineEntry] = entries
    if contact is not None:
        lines.append(f"Contact: {format_datetime(contact.moment, zone)}")
        lines.append(f"  {contact_sentence(contact)}")
        chosen = (e for e in entries if e.view.timestamp <= contact.moment)
    if filters:
        lines.append(f"Filtered: {visible_text(filters)}")
    # The newest few (as sorted(..., reverse=True)[:n], ties in timeline order).
    shown = heapq.nlargest(SUMMARY_PAGES, chosen, key=lambda e: e.view.timestamp)
    heading = "before contact" if contact is not None else "newest first"
    lines.append(f"Last {len(shown)} page view{'' if len(shown) == 1 else 's'} ({heading}):" if shown else "No page views to list.")
    lines.extend(page_line(entry, zone) for entry in shown)
    lines.append(f"Link: {link}")
    return "\n".join(lines)


def contact_sentence(contact: ContactContext) -> str:
    """Where the visitor was when they wrote in, as one plain sentence."""
    last = contact.last_before
    if last is None:
        if contact.first_after is None:
            return "No page views at all around the contact."
        return f"No page views before the contact; the first came {contact_label(contact.first_after.timestamp, contact.moment)}."
    page = visible_text(last.title) or visible_text(last.path) or "an untitled page"
    where = f"“{shorten(page, 80)}” ({shorten(visible_text(last.path), 80)})" if last.title else f"{shorten(page, 80)}"
    if contact.active_near:
        return f"Was on {where}, viewed {contact.gap_text} before contact."
    return f"No activity near the contact: the last page view before it was {contact.gap_text} earlier, on {where}."


def export_rows(entries: Sequence[TimelineEntry], zone: str, moment: datetime | None) -> list[dict[str, str]]:
    return [
        {
            "timestamp_utc": iso(e.view.timestamp),
            "time_local": format_datetime(e.view.timestamp, zone),
            "session_id": e.session_id or "",
            "path": e.view.path,
            "title": e.view.title or "",
            "referrer": e.view.referrer or "",
            "relative_to_contact": contact_label(e.view.timestamp, moment) if moment else "",
        }
        for e in entries
    ]


def timeline_csv(rows: Sequence[dict[str, str]]) -> bytes:
    """UTF-8 CSV (with a byte-order mark, so spreadsheets read the accents), formulas defused."""
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\r\n")
    writer.writerow(EXPORT_COLUMNS)
    for row in rows:
        writer.writerow([neutralise_cell(row[column]) for column in EXPORT_COLUMNS])
    return ("\ufeff" + out.getvalue()).encode("utf-8")


def timeline_json(visitor: Visitor, rows: Sequence[dict[str, str]], *, filters: dict[str, str], exported_at: datetime, zone: str) -> bytes:
    document = {
        "visitorId": visitor.visitor_id,
        "exportedAt": iso(exported_at),
        "timeZone": zone,
        "filters": filters,
        "sessionCount": visitor.session_count,
        "pageViewCount": visitor.page_view_count,
        "exported": len(rows),
        "pageViews": list(rows),
    }
    return json.dumps(document, ensure_ascii=False, indent=2).encode("utf-8")


def export_filename(visitor_id: str, moment: datetime, extension: str) -> str:
    """``visitor_123_timeline_20240120T142200Z.csv``: the visitor (made file-safe by
    werkzeug: ASCII letters, digits, ``._-``, no path) and the time."""
    safe = secure_filename(visitor_id)[:60] or "visitor"
    return f"{safe}_timeline_{moment.strftime('%Y%m%dT%H%M%SZ')}.{extension}"
