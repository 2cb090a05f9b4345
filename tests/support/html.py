"""Read HTML the way a browser does, so tests ask what the page says and holds, not how
its markup happens to be spelt (attribute order, quoting, white space).

    page = soup(client.get("/"))
    assert texts(page, "#sessions th") == ["Start", "Duration", ...]
    assert one(page, "#live-toggle")["aria-pressed"] == "true"
"""
from __future__ import annotations

from bs4 import BeautifulSoup, Tag

__all__ = ["attrs", "one", "soup", "text_of", "texts"]


def soup(response_or_text) -> BeautifulSoup:
    """Parse a Flask response (its ``.text``) or a string with the stdlib parser."""
    markup = response_or_text if isinstance(response_or_text, str) else response_or_text.text
    return BeautifulSoup(markup, "html.parser")


def text_of(element: Tag) -> str:
    """An element's text (as ``textContent``), stripped, with each run of white space made one space."""
    return " ".join(element.get_text().split())


def texts(page: Tag, selector: str) -> list[str]:
    """The text (see ``text_of``) of every element that matches the CSS ``selector``."""
    return [text_of(element) for element in page.select(selector)]


def one(page: Tag, selector: str) -> Tag:
    """The single element that matches ``selector``; fails the test on none or several."""
    found = page.select(selector)
    assert len(found) == 1, f"expected one element for {selector!r}, found {len(found)}: {[str(f)[:200] for f in found]}"
    return found[0]


def attrs(page: Tag, selector: str, name: str) -> list[str]:
    """The value of attribute ``name`` on every match of ``selector`` that has it."""
    return [element[name] for element in page.select(selector) if element.has_attr(name)]
