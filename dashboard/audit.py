"""The audit trail: who looked at which visitor, on which site, when, and with what result.

Writing: one short transaction per event on a connection of its own (not the request's
session), so that nothing the request read or left open can make the write fail; on
SQLite, WAL and busy_timeout (dashboard.db) make concurrent writers from several threads
and server processes wait their turn, and a write that still meets a lock is retried.

Policy: ``must_record`` says which requests are look-ups of their own, and
``record_answer`` writes one for a visitor look-up (which site, which outcome). The
trail fails closed: when the row cannot be written, ``record_answer`` raises
``AuditNotRecorded`` and the visitor is not shown.

Reading: ``AuditFilter`` turns the admin page's query string into a query, shared by the
page (paged) and the CSV export (everything that matches).
"""
from __future__ import annotations

import csv
import io
import logging
import time
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass
from datetime import date, datetime, time as day_time, timedelta, timezone
from zoneinfo import ZoneInfo

from sqlalchemy import Engine, Select, delete, func, insert, select
from sqlalchemy.exc import OperationalError
from sqlalchemy.orm import Session

from dashboard import metrics
from dashboard.formatting import neutralise_cell
from dashboard.lookup import VisitorAnswer
from dashboard.models import Agent, LookupEvent, utcnow

log = logging.getLogger("dashboard.audit")

WRITE_ATTEMPTS = 5
PRUNE_BATCH = 5000
# A fragment (narrowing, filtering, paging) of a visitor the agent opened within this
# window belongs to that look-up; anything else is a look-up of its own.
FRAGMENT_WINDOW = timedelta(minutes=60)


class AuditNotRecorded(Exception):
    """A look-up's audit row could not be written, so the look-up must not be shown."""

    def __init__(self, action: str, cause: BaseException) -> None:
        super().__init__(action)
        self.action = action
        # The class and first line only: a statement's parameters hold visitor IDs.
        self.cause = f"{cause.__class__.__name__}: {str(cause).splitlines()[0][:200] if str(cause) else ''}"


def is_locked(error: OperationalError) -> bool:
    """SQLite's "database is locked" (another writer): worth waiting for; a refusal is not."""
    return "locked" in str(error.orig).lower()


def record_event(
    engine: Engine,
    *,
    agent_id: int | None,
    site: str,
    visitor_id: str,
    action: str,
    outcome: str,
    ticket: str | None = None,
    created_at: datetime | None = None,
    integration: str | None = None,
    helpdesk_agent: str | None = None,
) -> None:
    """Write one event, retrying while the database stays locked; raise if it never can.

    ``integration`` and ``helpdesk_agent`` name the help desk a card was shown in and its
    own reference of the agent (dashboard.cards); None for the dashboard's own views."""
    row = {
        "agent_id": agent_id,
        "site": site[:200],
        "visitor_id": visitor_id,
        "action": action[:20],
        "outcome": outcome[:40],
        "ticket": ticket[:200] if ticket else None,
        "created_at": created_at or utcnow(),
        "integration": integration[:64] if integration else None,
        "helpdesk_agent": helpdesk_agent[:320] if helpdesk_agent else None,
    }
    for attempt in range(1, WRITE_ATTEMPTS + 1):
        try:
            with engine.begin() as connection:
                connection.execute(insert(LookupEvent), [row])
            return
        except OperationalError as error:
            if attempt == WRITE_ATTEMPTS or not is_locked(error):
                raise
            log.warning("audit write attempt %d met a locked database; retrying", attempt)
            time.sleep(0.05 * 2**attempt)


def record_answer(
    engine: Engine,
    answer: VisitorAnswer,
    *,
    agent_id: int | None,
    visitor_id: str,
    action: str,
    ticket: str | None,
    integration: str | None = None,
    helpdesk_agent: str | None = None,
) -> None:
    """Audit one visitor look-up: the site that answered, or every site asked when none
    knew the visitor; with no site configured, still a look-up someone tried (an unknown
    site asks nobody and is not recorded). Fails closed: raises ``AuditNotRecorded`` when
    the row cannot be written, and the caller shows no visitor data."""
    search, result = answer.search, answer.result
    if search is None or result is None:
        if not answer.no_site:
            return
        site, outcome = answer.site or "", "no_site"
    elif result.knows_visitor or len(search.lookups) == 1:
        site, outcome = result.site.slug, result.outcome
    else:
        site, outcome = ",".join(lookup.site.slug for lookup in search.lookups), result.outcome
    try:
        record_event(
            engine,
            agent_id=agent_id,
            site=site,
            visitor_id=visitor_id,
            action=action,
            outcome=outcome,
            ticket=ticket,
            integration=integration,
            helpdesk_agent=helpdesk_agent,
        )
    except Exception as error:  # whatever refused the row, the look-up is not shown
        metrics.audit_write_failed(action)
        raise AuditNotRecorded(action, error) from error


def must_record(
    session: Session, answer: VisitorAnswer, *, agent_id: int, visitor_id: str, new_lookup: bool, now: datetime
) -> bool:
    """Whether this request is a look-up of its own: a new look-up, one that asked
    PostMetric, or one the agent's trail does not already show within FRAGMENT_WINDOW.

    Without the last, a request that only claims to be a fragment (any client can send
    HX-Target) would show a visitor, cached for another agent, with no audit row.
    """
    return (
        new_lookup
        or answer.asked_postmetric
        or not looked_up_recently(session, agent_id=agent_id, visitor_id=visitor_id, site=answer.site, now=now)
    )


def looked_up_recently(session: Session, *, agent_id: int, visitor_id: str, site: str | None, now: datetime) -> bool:
    """Whether the agent's trail shows this visitor (on ``site``, if named) within FRAGMENT_WINDOW."""
    same_site = LookupEvent.site == site if site else True
    query = (
        select(LookupEvent.id)
        .where(
            LookupEvent.agent_id == agent_id,
            LookupEvent.visitor_id == visitor_id,
            LookupEvent.created_at >= now - FRAGMENT_WINDOW,
            same_site,
        )
        .limit(1)
    )
    return session.scalar(query) is not None


def agents_active(engine: Engine, window: timedelta, now: datetime | None = None) -> int:
    """How many agents looked a visitor up within ``window``."""
    since = (now or utcnow()) - window
    with engine.connect() as connection:
        query = select(func.count(func.distinct(LookupEvent.agent_id))).where(LookupEvent.created_at >= since)
        return connection.scalar(query) or 0


def recent_lookups(session: Session, agent_id: int, limit: int = 10) -> list[tuple[str, datetime]]:
    """The agent's latest distinct look-ups (visitor ID, when), newest first."""
    latest = func.max(LookupEvent.created_at)
    rows = session.execute(
        select(LookupEvent.visitor_id, latest)
        .where(LookupEvent.agent_id == agent_id)
        .group_by(LookupEvent.visitor_id)
        .order_by(latest.desc())
        .limit(limit)
    ).all()
    # SQLite hands back naive datetimes; they were written in UTC.
    return [(visitor_id, when if when.tzinfo else when.replace(tzinfo=timezone.utc)) for visitor_id, when in rows]


def prune(engine: Engine, *, older_than: datetime, dry_run: bool = False) -> int:
    """Delete events created before ``older_than`` (in batches, so writers are not held
    up for long); return how many there were."""
    if dry_run:
        with engine.connect() as connection:
            return connection.scalar(select(func.count()).select_from(LookupEvent).where(LookupEvent.created_at < older_than)) or 0
    removed = 0
    while True:
        with engine.begin() as connection:
            batch = select(LookupEvent.id).where(LookupEvent.created_at < older_than).limit(PRUNE_BATCH)
            count = connection.execute(delete(LookupEvent).where(LookupEvent.id.in_(batch))).rowcount
        removed += count
        if count < PRUNE_BATCH:
            return removed


def retention_cutoff(days: int, now: datetime | None = None) -> datetime:
    return (now or utcnow()) - timedelta(days=days)


class InvalidFilter(ValueError):
    """A filter value that cannot be used, with the sentence to show."""


@dataclass(frozen=True)
class AuditFilter:
    """The audit page's filters; dates are whole days in ``zone`` (the admin's time zone)."""

    agent_id: int | None = None
    visitor_id: str = ""
    since: date | None = None
    until: date | None = None
    zone: str = "UTC"

    @classmethod
    def from_args(cls, args: Mapping[str, str], zone: str = "UTC") -> "AuditFilter":
        agent = (args.get("agent") or "").strip()
        if agent and (not agent.isdigit() or len(agent) > 12):
            raise InvalidFilter("Choose an agent from the list.")
        since, until = _day(args.get("from"), "From"), _day(args.get("to"), "To")
        if since and until and since > until:
            raise InvalidFilter("The “from” date is after the “to” date.")
        return cls(
            agent_id=int(agent) if agent else None,
            visitor_id=(args.get("visitor") or "").strip()[:512],
            since=since,
            until=until,
            zone=zone,
        )

    def params(self) -> dict[str, str]:
        """The query parameters of this filter, empty ones left out."""
        values = {
            "agent": str(self.agent_id) if self.agent_id else "",
            "visitor": self.visitor_id,
            "from": self.since.isoformat() if self.since else "",
            "to": self.until.isoformat() if self.until else "",
        }
        return {key: value for key, value in values.items() if value}

    def apply(self, query: Select) -> Select:
        if self.agent_id:
            query = query.where(LookupEvent.agent_id == self.agent_id)
        if self.visitor_id:
            query = query.where(LookupEvent.visitor_id == self.visitor_id)
        if self.since:
            query = query.where(LookupEvent.created_at >= self._start_of(self.since))
        if self.until:
            query = query.where(LookupEvent.created_at < self._start_of(self.until + timedelta(days=1)))
        return query

    def _start_of(self, day: date) -> datetime:
        return datetime.combine(day, day_time.min, tzinfo=ZoneInfo(self.zone)).astimezone(timezone.utc)


EARLIEST_DAY, LATEST_DAY = date(2000, 1, 1), date(2999, 12, 31)


def _day(raw: str | None, label: str) -> date | None:
    raw = (raw or "").strip()
    if not raw:
        return None
    try:
        day = date.fromisoformat(raw)
    except ValueError:
        raise InvalidFilter(f"“{label}” must be a date such as 2024-01-31.") from None
    # Days at the ends of the calendar overflow once moved into UTC; no event is there.
    if not EARLIEST_DAY <= day <= LATEST_DAY:
        raise InvalidFilter(f"“{label}” must be a date between {EARLIEST_DAY.year} and {LATEST_DAY.year}.")
    return day


@dataclass(frozen=True)
class AuditRow:
    """One event as the page and the export show it."""

    created_at: datetime  # aware, UTC
    agent: str
    site: str
    visitor_id: str
    action: str
    outcome: str
    ticket: str | None


def events_query(audit_filter: AuditFilter) -> Select:
    """Events with their agent's e-mail, newest first."""
    query = select(LookupEvent, Agent.email).outerjoin(Agent, LookupEvent.agent_id == Agent.id)
    return audit_filter.apply(query).order_by(LookupEvent.created_at.desc(), LookupEvent.id.desc())


def stored_utc(created: datetime) -> datetime:
    """An event's time as aware UTC: SQLite hands back naive date-times, all written in UTC."""
    return created.replace(tzinfo=timezone.utc) if created.tzinfo is None else created.astimezone(timezone.utc)


def audit_rows(results: Iterable[tuple[LookupEvent, str | None]]) -> Iterator[AuditRow]:
    for event, email in results:
        yield AuditRow(stored_utc(event.created_at), email or "(deleted agent)", event.site, event.visitor_id, event.action, event.outcome, event.ticket)


def count_events(session: Session, audit_filter: AuditFilter) -> int:
    query = audit_filter.apply(select(func.count()).select_from(LookupEvent))
    return session.scalar(query) or 0


@dataclass(frozen=True)
class TicketLookup:
    """An earlier look-up of a visitor that named a ticket."""

    ticket: str
    agent: str  # the local part of the agent's e-mail address
    created_at: datetime  # aware, UTC


def ticket_history(
    session: Session, site: str, visitor_id: str, exclude_ticket: str | None = None, limit: int = 5
) -> list[TicketLookup]:
    """The newest ``limit`` distinct tickets this visitor was looked up for on ``site``,
    each with its latest look-up and that look-up's agent, newest first.

    ``exclude_ticket`` (the ticket on screen) is left out: it is not "seen before".
    """
    latest = (
        func.row_number()
        .over(partition_by=LookupEvent.ticket, order_by=(LookupEvent.created_at.desc(), LookupEvent.id.desc()))
        .label("latest")
    )
    lookups = select(LookupEvent.ticket, LookupEvent.created_at, LookupEvent.agent_id, latest).where(
        LookupEvent.visitor_id == visitor_id, LookupEvent.site == site, LookupEvent.ticket.is_not(None)
    )
    if exclude_ticket:
        lookups = lookups.where(LookupEvent.ticket != exclude_ticket)
    ranked = lookups.subquery()
    rows = session.execute(
        select(ranked.c.ticket, ranked.c.created_at, Agent.email)
        .outerjoin(Agent, ranked.c.agent_id == Agent.id)
        .where(ranked.c.latest == 1)
        .order_by(ranked.c.created_at.desc())
        .limit(limit)
    ).all()
    return [
        TicketLookup(
            ticket,
            email.partition("@")[0] if email else "(deleted agent)",
            stored_utc(created),
        )
        for ticket, created, email in rows
    ]


CSV_COLUMNS = ("time_utc", "agent", "site", "visitor_id", "action", "outcome", "ticket")
# A spreadsheet runs a cell that starts with one of these as a formula; visitor IDs and
# tickets come from strangers, so such cells are exported with a leading apostrophe.
def csv_lines(rows: Iterable[AuditRow]) -> Iterator[str]:
    """The CSV text, a line at a time (header first)."""
    buffer = io.StringIO()
    writer = csv.writer(buffer)

    def line(values: Iterable[object]) -> str:
        writer.writerow([neutralise_cell(value) for value in values])
        text = buffer.getvalue()
        buffer.seek(0)
        buffer.truncate()
        return text

    yield line(CSV_COLUMNS)
    for row in rows:
        yield line((row.created_at.isoformat(timespec="seconds"), row.agent, row.site, row.visitor_id, row.action, row.outcome, row.ticket))
