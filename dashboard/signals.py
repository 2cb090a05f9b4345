"""What stands out in a visitor's page views: pure functions, no Flask.

An agent reading a long timeline misses the few rows that explain a ticket. These
functions name them, each with the timeline rows it refers to (as anchor ids, which the
view's rows carry). The thresholds, chosen so that ordinary browsing stays quiet:

- **error page**: a title or path that says ``error``/``errors``, ``404`` or ``500`` (as
  numbers on their own, not inside ``1404``), ``went wrong``, ``failed``/``failure`` or
  ``not found``; whole words only, so ``/terror`` and ``/errorless`` do not count.
- **repeated attempts**: one path viewed ``REPEAT_COUNT`` (3) or more times within
  ``REPEAT_WINDOW`` (5 minutes), in any session.
- **loop**: within one session, an A→B→A→B alternation of ``LOOP_VIEWS`` (4) or more
  views (a reload of A in between does not break it).
- **long stay**: ``LONG_STAY`` (10 minutes) or more between a view and the next view of
  its session. How long the last view of a session lasted is unknown, so it never counts.
- **last page before contact**: the latest view at or before the ticket moment, when there
  is one (``?at=``).
- **several devices**: the visitor's sessions name more than one device.

Each kind lists its ``PER_KIND`` (3) most recent cases; more become one "N more" line, so
the panel stays short on a big visitor. A 1,000-view visitor costs about half a
millisecond of CPU (measured with timeit; see the README).
"""
from __future__ import annotations

import re
from bisect import bisect_left, bisect_right
from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from itertools import compress, groupby
from operator import attrgetter, eq, ge, itemgetter, ne, or_, sub
from typing import NamedTuple

from dashboard.formatting import shorten, visible_text
from dashboard.postmetric.models import PageView, Session, Visitor
from dashboard.timeline import TimelinePage

REPEAT_COUNT = 3
REPEAT_WINDOW = timedelta(minutes=5)
LOOP_VIEWS = 4
LONG_STAY = timedelta(minutes=10)
PER_KIND = 3
TARGETS_PER_SIGNAL = 5  # rows linked from one line; a line names how many there are
SHOWN_TEXT = 60  # characters of a stranger's title or path quoted in a sentence
# A stranger's title can be megabytes; an error word is near its start or nowhere useful.
SCANNED_TEXT = 2000

# Letters and digits on either side end a match: "error" but not "terror", "404" but not
# "1404". Separators may be spaces, dashes or underscores ("went-wrong", "not_found").
_ERROR_WORDS = re.compile(
    r"(?<![^\W_])(?:errors?|404|500|went[\s_-]+wrong|failed|failure|not[\s_-]+found)(?![^\W_])",
    re.IGNORECASE,
)

ERROR_PAGE = "error_page"
REPEATED = "repeated"
LOOP = "loop"
LONG_STAY_KIND = "long_stay"
LAST_BEFORE_CONTACT = "last_before_contact"
SEVERAL_DEVICES = "several_devices"
#: The order of the kinds in the panel: what most often explains a ticket first.
KINDS = (LAST_BEFORE_CONTACT, ERROR_PAGE, REPEATED, LOOP, LONG_STAY_KIND, SEVERAL_DEVICES)


class Target(NamedTuple):
    """A timeline row a signal refers to."""

    anchor: str  # the id the row (or its entry in a run) carries
    timestamp: datetime
    session_id: str | None


@dataclass(frozen=True)
class Signal:
    """One thing that stands out: its kind, a sentence (plain text: untrusted parts are
    already shortened and their hidden characters made visible; escape it when shown),
    and the rows it refers to."""

    kind: str
    sentence: str
    targets: tuple[Target, ...] = ()


def looks_like_error(path: str | None, title: str | None) -> bool:
    """Whether a page's title or path says that something failed."""
    return bool(
        (title and _ERROR_WORDS.search(title, 0, SCANNED_TEXT)) or (path and _ERROR_WORDS.search(path, 0, SCANNED_TEXT))
    )


def _anchor_base(moment: datetime) -> str:
    utc = moment.astimezone(timezone.utc) if moment.utcoffset() else moment
    iso = utc.isoformat()  # 2024-01-20T14:22:00[.250000][+00:00]: sliced, a third of strftime's cost
    base = f"view-{iso[:4]}{iso[5:7]}{iso[8:10]}t{iso[11:13]}{iso[14:16]}{iso[17:19]}"
    return f"{base}-{iso[20:26]}" if utc.microsecond else base


class Anchors:
    """The stable id of each page view's row: its time in UTC (``view-20240120t142200``,
    ``view-20240120t142200-250000`` with microseconds), and ``-2``, ``-3``… after the
    first of views that share a time (numbered in a fixed order: the reverse of PostMetric's).

    Built from the views in time order; looking one up costs a bisection, so only the
    rows on screen and the signals' targets pay for an id.
    """

    def __init__(self, ordered: Sequence[PageView], times: Sequence[datetime]):
        self._views = ordered
        self._times = times

    def of(self, view: PageView) -> str:
        times, moment = self._times, view.timestamp
        low = bisect_left(times, moment)
        base = _anchor_base(moment)
        if low + 1 >= len(times) or times[low + 1] != moment:  # no other view at this time
            return base
        high = bisect_right(times, moment, low)
        rank = next((i for i in range(low, high) if self._views[i] is view), low) - low
        return base if rank == 0 else f"{base}-{rank + 1}"


def _quote(view: PageView) -> str:
    """The page as a sentence names it: “title” (path), both shortened and made visible."""
    path = _shown(view.path) or "(no path)"
    return f"“{_shown(view.title)}” ({path})" if view.title else path


def _shown(text: str | None) -> str:
    """A stranger's text as a sentence quotes it: cut first (it may be megabytes), then
    its hidden characters made visible."""
    return shorten(visible_text((text or "")[: SHOWN_TEXT + 1]), SHOWN_TEXT)


def _span(span: timedelta) -> str:
    seconds = int(span.total_seconds())
    if seconds < 60:
        return f"{seconds} s"
    if seconds < 3600:
        return f"{seconds // 60} min"
    hours, minutes = divmod(seconds // 60, 60)
    return f"{hours} h {minutes} min" if minutes else f"{hours} h"


def _kept(kind: str, found: list[Signal]) -> list[Signal]:
    """The newest PER_KIND signals of a kind, and one line for the rest."""
    if len(found) <= PER_KIND:
        return found
    rest = found[PER_KIND:]
    targets = tuple(signal.targets[0] for signal in rest if signal.targets)[:TARGETS_PER_SIGNAL]
    return [*found[:PER_KIND], Signal(kind, f"{len(rest)} more like this.", targets)]


class _Views(NamedTuple):
    """A visitor's page views in time order, as parallel lists (one C-level pass each:
    the signals are found with map/compress over these, not a Python loop per view)."""

    views: list[PageView]
    times: list[datetime]
    paths: list[str | None]
    sessions: list[Session | None]
    session_keys: list[int]  # id() of each view's session; NO_SESSION for none
    session_starts: list[int]  # where a run of views of one session (or of none) begins


NO_SESSION = id(None)
_TIMESTAMP = attrgetter("timestamp")
_PATH = attrgetter("path")
_TITLE = attrgetter("title")
_DEVICE = attrgetter("device")
_FIRST_VISIT = attrgetter("first_visit_at")


def _in_time_order(page_views: Sequence[PageView], assignment: Sequence[Session | None]) -> _Views:
    times = list(map(_TIMESTAMP, page_views))
    if all(map(ge, times, times[1:])):  # PostMetric sends newest first: just turn it round
        views, sessions = list(page_views), list(assignment)
        for values in (views, sessions, times):
            values.reverse()
    else:
        newest_first = sorted(range(len(times)), key=times.__getitem__, reverse=True)  # stable: same order for ties
        order = newest_first[::-1]
        views, sessions, times = [page_views[i] for i in order], [assignment[i] for i in order], [times[i] for i in order]
    keys = list(map(id, sessions))
    starts = [0, *compress(range(1, len(keys)), map(ne, keys, keys[1:]))] if keys else []
    return _Views(views, times, list(map(_PATH, views)), sessions, keys, starts)


def find_signals(
    visitor: Visitor, assignment: Sequence[Session | None], moment: datetime | None = None
) -> tuple[list[Signal], Anchors]:
    """What stands out in ``visitor``'s page views, kinds in ``KINDS`` order and the newest
    case first within a kind, with the anchors the rows carry.

    ``assignment`` is the session of each page view (``timeline.assign_page_views``);
    ``moment`` the ticket's time, when the view has one.
    """
    data = _in_time_order(visitor.page_views, assignment)
    ordered = data.views
    anchors = Anchors(ordered, data.times)

    def target(index: int) -> Target:
        view, session = ordered[index], data.sessions[index]
        return Target(anchors.of(view), view.timestamp, session.session_id if session else None)

    def targets(indexes: Sequence[int]) -> tuple[Target, ...]:
        return tuple(target(i) for i in indexes[:TARGETS_PER_SIGNAL])

    found: dict[str, list[Signal]] = {kind: [] for kind in KINDS}

    if moment is not None:
        last = bisect_right(data.times, moment) - 1
        if last >= 0:
            gap = moment - data.times[last]
            when = "at the contact moment" if not gap else f"{_span(gap)} before contact"
            found[LAST_BEFORE_CONTACT].append(
                Signal(LAST_BEFORE_CONTACT, f"Last page before contact: {_quote(ordered[last])}, {when}.", (target(last),))
            )

    for indexes in sorted(_error_views(data), key=itemgetter(-1), reverse=True):
        times = "" if len(indexes) == 1 else f" ({len(indexes)} times)"
        found[ERROR_PAGE].append(
            Signal(ERROR_PAGE, f"Error page: {_quote(ordered[indexes[-1]])}{times}.", targets(indexes[::-1]))
        )

    loops, stays = [], []
    for stream in _session_streams(data):
        loops.extend(_loops(data, stream))
        stays.extend(_long_stays(data, stream))
    # The same page again and again as part of a loop is the loop's story, told once.
    in_loops = {index for run in loops for index in run}
    for burst in sorted(_repeats(data), key=itemgetter(-1), reverse=True):
        if in_loops.issuperset(burst):
            continue
        span = data.times[burst[-1]] - data.times[burst[0]]
        found[REPEATED].append(
            Signal(
                REPEATED,
                f"Repeated attempts: {_quote(ordered[burst[-1]])} {len(burst)} times within {_span(span)}.",
                targets(burst),
            )
        )

    for run in sorted(loops, key=itemgetter(-1), reverse=True):
        first, second = ordered[run[0]], ordered[run[1]]
        found[LOOP].append(
            Signal(
                LOOP,
                f"Back and forth: {len(run)} views alternating between {_quote(first)} and {_quote(second)}.",
                targets(run),
            )
        )
    for index, stay in sorted(stays, reverse=True):
        found[LONG_STAY_KIND].append(
            Signal(LONG_STAY_KIND, f"Long stay: {_span(stay)} on {_quote(ordered[index])} before the next page.", (target(index),))
        )

    devices = _devices(visitor.sessions)
    if len(devices) > 1:
        # Each device links the first view of its latest session that has views.
        latest: dict[str, int] = {}
        for index in data.session_starts:
            session = data.sessions[index]
            if session is not None and (device := devices.get(session.device)):
                latest.pop(device, None)
                latest[device] = index
        names = ", ".join(_shown(name) for name in dict.fromkeys(devices.values()))
        count = len(set(devices.values()))
        linked = sorted(latest.values(), reverse=True)
        found[SEVERAL_DEVICES].append(Signal(SEVERAL_DEVICES, f"Sessions on {count} devices: {names}.", targets(linked)))
    return [signal for kind in KINDS for signal in _kept(kind, found[kind])], anchors


def _error_views(data: _Views) -> list[list[int]]:
    """The views of each error page (one list per distinct path and title), in time order."""
    titles = list(map(_TITLE, data.views))
    bad_paths = {path for path in set(data.paths) if looks_like_error(path, None)}
    bad_titles = {title for title in set(titles) if looks_like_error(None, title)}
    if not bad_paths and not bad_titles:
        return []
    pages: dict[tuple[str | None, str | None], list[int]] = {}
    flagged = map(or_, map(bad_paths.__contains__, data.paths), map(bad_titles.__contains__, titles))
    for index in compress(range(len(titles)), flagged):
        pages.setdefault((data.paths[index], titles[index]), []).append(index)
    return list(pages.values())


def _repeats(data: _Views) -> list[list[int]]:
    """Bursts of one path: at least REPEAT_COUNT views within REPEAT_WINDOW of the first."""
    times, step = data.times, REPEAT_COUNT - 1
    by_path: defaultdict[str | None, list[int]] = defaultdict(list)
    for index, path in enumerate(data.paths):
        by_path[path].append(index)
    found = []
    for indexes in by_path.values():
        if len(indexes) < REPEAT_COUNT:
            continue
        own = list(itemgetter(*indexes)(times))
        if any(map(REPEAT_WINDOW.__ge__, map(sub, own[step:], own))):
            found.extend(_bursts(own, indexes))
    return found


def _bursts(times: list[datetime], indexes: list[int]) -> list[list[int]]:
    """Runs of at least REPEAT_COUNT of ``indexes`` (``times`` theirs), each within
    REPEAT_WINDOW of its run's first."""
    found = []
    start = 0
    while start <= len(indexes) - REPEAT_COUNT:
        end = bisect_right(times, times[start] + REPEAT_WINDOW, start)
        if end - start >= REPEAT_COUNT:
            found.append(indexes[start:end])
            start = end
        else:
            start += 1
    return found


def _session_streams(data: _Views) -> list[list[int] | None]:
    """The view indexes to read session by session: None (all views, in order) when each
    session's views follow each other, else one list per session (overlapping windows)."""
    keys = data.session_keys
    if len(data.session_starts) == len(set(keys)):
        return [None]
    streams: dict[int, list[int]] = {}
    for index, key in enumerate(keys):
        if key != NO_SESSION:
            streams.setdefault(key, []).append(index)
    return list(streams.values())


def _pick(values: list, stream: list[int] | None) -> list:
    return values if stream is None else [values[i] for i in stream]


def _long_stays(data: _Views, stream: list[int] | None) -> list[tuple[int, timedelta]]:
    """(view index, time until the next view of its session) for each stay of LONG_STAY or more."""
    times, keys = _pick(data.times, stream), _pick(data.session_keys, stream)
    gaps = list(map(sub, times[1:], times))
    found = []
    for position in compress(range(len(gaps)), map(LONG_STAY.__le__, gaps)):
        if keys[position] == keys[position + 1] != NO_SESSION:
            found.append((position if stream is None else stream[position], gaps[position]))
    return found


def _loops(data: _Views, stream: list[int] | None) -> list[list[int]]:
    """A→B→A→B runs of at least LOOP_VIEWS steps within one session; consecutive views of
    one path are one step (a reload is not a step). A run lists each step's first view."""
    paths, keys = _pick(data.paths, stream), _pick(data.session_keys, stream)
    if len(paths) < LOOP_VIEWS:
        return []
    # A step that runs on over a session's end keeps its first view's session, so a run of
    # steps never counts as one loop across two sessions (the key check below breaks it).
    starts = [0, *compress(range(1, len(paths)), map(ne, paths, paths[1:]))]
    if len(starts) < LOOP_VIEWS:
        return []
    step_paths, step_keys = list(itemgetter(*starts)(paths)), list(itemgetter(*starts)(keys))
    # Step j repeats step j-2 (same path, same session): j-1 lies between them, in that session.
    repeats = [
        j for j in compress(range(2, len(starts)), map(eq, step_paths[2:], step_paths)) if step_keys[j] == step_keys[j - 2]
    ]
    found = []
    for _, group in groupby(enumerate(repeats), key=lambda pair: pair[1] - pair[0]):
        run = [j for _, j in group]
        first, last = run[0] - 2, run[-1]
        if last - first + 1 >= LOOP_VIEWS and step_keys[first] != NO_SESSION:
            found.append([starts[j] if stream is None else stream[starts[j]] for j in range(first, last + 1)])
    return found


def _devices(sessions: Sequence[Session]) -> dict[str | None, str]:
    """Each device name the sessions use, mapped to the device as first written ("Desktop "
    and "desktop" are one), in order of first use; empty when fewer than two devices."""
    names = set(map(_DEVICE, sessions))  # a handful of names, found in C
    trimmed = {name: name.strip() for name in names if name and name.strip()}
    if len({device.casefold() for device in trimmed.values()}) < 2:
        return {}
    devices: dict[str | None, str] = {}
    first_written: dict[str, str] = {}
    for session in sorted(sessions, key=_FIRST_VISIT):
        name = session.device
        if name in trimmed and name not in devices:
            devices[name] = first_written.setdefault(trimmed[name].casefold(), trimmed[name])
    return devices


def view_context(found_signals: tuple[list[Signal], Anchors], page: TimelinePage) -> dict[str, object]:
    """What the visitor view's template needs: the signals and the rows' anchors (what
    :func:`find_signals` gave: the view keeps that per fetched visitor and moment), and
    the times of the views on this page (their rows are reached in place)."""
    found, anchors = found_signals
    return {
        "signals": found,
        "anchors": anchors,
        "shown_view_times": {entry.view.timestamp for row in page.rows for entry in row.entries},
    }
