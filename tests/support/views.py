"""Requests and readings shared by the tests of the visitor view and other htmx pages."""
from __future__ import annotations

from tests.support.html import soup

HTMX = {"HX-Request": "true"}


def fragment(client, url, target, **headers):
    """GET ``url`` as htmx does when it swaps the element ``#target``."""
    return client.get(url, headers={**HTMX, "HX-Target": target, **headers})


def timeline_rows(response_or_text) -> int:
    """Page views in the timeline (a collapsed row counts all the views it holds)."""
    return sum(int(row["data-views"]) for row in soup(response_or_text).select("tr.view[data-views]"))
