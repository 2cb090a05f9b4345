"""Read HTML in tests as a document, not as text: attribute order and spacing are free."""
from __future__ import annotations

from bs4 import BeautifulSoup, Tag


def soup(response_or_text) -> BeautifulSoup:
    """Parse a Flask test response (or a string) with the standard library's parser."""
    text = response_or_text if isinstance(response_or_text, str) else response_or_text.get_data(as_text=True)
    return BeautifulSoup(text, "html.parser")


def texts(document: BeautifulSoup | Tag, selector: str) -> list[str]:
    """The text of every element matching the CSS ``selector``, white space collapsed."""
    return [" ".join(element.get_text(" ").split()) for element in document.select(selector)]


def one(document: BeautifulSoup | Tag, selector: str) -> Tag:
    """The only element matching the CSS ``selector``; fails when there are none or several."""
    found = document.select(selector)
    assert len(found) == 1, f"{len(found)} elements match {selector!r}"
    return found[0]
