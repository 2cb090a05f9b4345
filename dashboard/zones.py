"""Time zones: the signed-in agent's, and the IANA names an agent may choose from.

Below the blueprints: the login page, the account page, the markup helpers and the
template filters all need them, and none of those may import another's blueprint.
"""
from __future__ import annotations

from functools import lru_cache
from zoneinfo import available_timezones

from flask import g
from flask_login import current_user


def agent_zone() -> str:
    """The signed-in agent's time zone (UTC otherwise), looked up once per request: a big
    page formats hundreds of times."""
    zone = g.get("agent_zone")
    if zone is None:
        zone = g.agent_zone = getattr(current_user, "timezone", None) or "UTC"
    return zone


@lru_cache(maxsize=1)
def zone_names() -> tuple[str, ...]:
    """Every IANA zone name, sorted; the legacy aliases (``US/Eastern``) come along."""
    return tuple(sorted(available_timezones()))


def is_zone(name: str | None) -> bool:
    return bool(name) and name in zone_names()
