"""Walk the app's real routes, so a route added later is checked without anyone listing it."""
from __future__ import annotations

import re


def url_for_rule(rule: str, values: dict[str, str]) -> str:
    """A URL for the Werkzeug ``rule`` with each ``<variable>`` taken from ``values``."""

    def value(match: re.Match) -> str:
        name = match.group(1)
        assert name in values, f"add a value for <{name}> to the test's URL values"
        return values[name]

    return re.sub(r"<(?:\w+:)?(\w+)>", value, rule)
