"""Delivery: compressed answers, and static files under versioned names cached for good."""
from __future__ import annotations

import gzip
import hashlib
from pathlib import Path

import brotli
import pytest

from dashboard.static_files import StaticVersions
from tests.support.html import attrs, soup

STATIC = Path(__file__).resolve().parents[2] / "static"
YEAR = 365 * 24 * 3600


def decoded(response) -> str:
    body = response.get_data()
    encoding = response.headers.get("Content-Encoding")
    if encoding == "br":
        body = brotli.decompress(body)
    elif encoding == "gzip":
        body = gzip.decompress(body)
    else:
        assert encoding is None, encoding
    return body.decode("utf-8")


# -- compression ----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("accept", "expected"),
    [("gzip, deflate, br, zstd", "br"), ("br;q=0.5, gzip", "gzip"), ("gzip", "gzip"), ("identity", None), ("", None)],
)
def test_pages_are_compressed_as_the_browser_accepts(logged_in, accept, expected):
    response = logged_in.get("/visitors/visitor_123", headers={"Accept-Encoding": accept})
    assert response.status_code == 200
    assert response.headers.get("Content-Encoding") == expected
    vary = {part.strip().lower() for part in response.headers["Vary"].split(",")}
    assert {"accept-encoding", "hx-request"} <= vary
    html = decoded(response)
    assert "visitor_123" in html and html.rstrip().endswith("</html>")
    if expected:
        # Worth it: a page compresses to a fraction of its size.
        assert len(response.get_data()) * 3 < len(html.encode())


def test_fragments_and_exports_are_compressed_too(logged_in):
    fragment = logged_in.get("/visitors/visitor_123", headers={"Accept-Encoding": "br", "HX-Request": "true", "HX-Target": "timeline"})
    assert fragment.headers["Content-Encoding"] == "br" and 'id="timeline"' in decoded(fragment)
    # Error states (a few KB) are sent as they are: flask-compress leaves non-2xx alone.
    failed = logged_in.get("/visitors/fail-502", headers={"Accept-Encoding": "gzip"})
    assert failed.status_code == 502 and "data-error-kind=" in decoded(failed)
    export = logged_in.get("/visitor/export?visitorId=visitor_123&format=csv", headers={"Accept-Encoding": "gzip"})
    assert export.headers["Content-Encoding"] == "gzip" and decoded(export).count("\n") > 40


def test_tiny_answers_are_sent_as_they_are(client):
    # Below a few hundred bytes compression costs more than it saves.
    response = client.get("/healthz", headers={"Accept-Encoding": "br, gzip"})
    assert response.status_code == 200 and "Content-Encoding" not in response.headers


# -- static files ---------------------------------------------------------------------


def content_version(name: str) -> str:
    return hashlib.sha256((STATIC / name).read_bytes()).hexdigest()[:12]


def test_pages_link_static_files_under_their_content_version(client):
    document = soup(client.get("/login"))
    links = attrs(document, 'link[rel="stylesheet"], link[rel="icon"]', "href") + attrs(document, "script[src]", "src")
    expected = {f"/static/{content_version(name)}/{name}" for name in ("app.css", "favicon.svg", "app.js", "htmx-2.0.11.min.js")}
    assert set(links) == expected


@pytest.mark.parametrize("name", ["app.css", "app.js", "htmx-2.0.11.min.js", "icons.svg"])
def test_a_versioned_static_file_is_cached_for_good(client, name):
    response = client.get(f"/static/{content_version(name)}/{name}", headers={"Accept-Encoding": "br"})
    assert response.status_code == 200
    cache = response.cache_control
    assert cache.public and cache.immutable and cache.max_age == YEAR
    assert "no-store" not in response.headers["Cache-Control"]
    assert response.headers["Content-Encoding"] == "br"
    assert brotli.decompress(response.get_data()) == (STATIC / name).read_bytes()


@pytest.mark.parametrize("url", ["/static/app.css", "/static/000000000000/app.css"])
def test_an_unversioned_or_old_name_still_answers_but_is_revalidated(client, url):
    response = client.get(url)
    assert response.status_code == 200 and response.get_data() == (STATIC / "app.css").read_bytes()
    assert response.cache_control.no_cache and not response.cache_control.immutable
    assert not response.cache_control.max_age


def test_a_missing_static_file_is_a_404(client):
    assert client.get(f"/static/{content_version('app.css')}/no-such-file.css").status_code == 404
    assert client.get("/static/000000000000/../config.py").status_code == 404


def test_a_changed_file_gets_a_new_version(tmp_path):
    (tmp_path / "site.css").write_text("body { color: red }")
    versions = StaticVersions(str(tmp_path))
    before = versions.version("site.css")
    (tmp_path / "site.css").write_text("body { color: blue; }")
    after = versions.version("site.css")
    assert before and after and before != after
    assert after == hashlib.sha256(b"body { color: blue; }").hexdigest()[:12]
    assert versions.version("missing.css") is None and versions.version("../etc/passwd") is None
