"""The markup helpers drawn on every timeline row: escaped, isolated, and the same HTML
the templates' macros drew before them."""
from __future__ import annotations

import re

from datetime import datetime, timedelta, timezone

import pytest
from flask import Flask, g
from markupsafe import Markup

from dashboard import markup
from dashboard.formatting import environment

AT = datetime(2024, 1, 15, 10, 30, 5, 123000, tzinfo=timezone.utc)


@pytest.fixture
def request_in():
    """A request context with the agent's zone already chosen (what agent_zone caches)."""
    app = Flask(__name__)

    def within(zone: str = "UTC"):
        context = app.test_request_context("/")
        context.push()
        g.agent_zone = zone
        return context

    contexts = []
    yield lambda zone="UTC": contexts.append(within(zone))
    for context in reversed(contexts):
        context.pop()


def test_a_time_shows_the_agents_zone_with_the_exact_instant_for_machines(request_in):
    request_in("Europe/Berlin")
    html = markup.time_tag(AT)
    assert isinstance(html, Markup)
    assert html == '<time datetime="2024-01-15T10:30:05.123Z" title="2024-01-15 10:30:05 UTC">2024-01-15 11:30:05 CET</time>'
    assert markup.time_tag(AT, seconds=False).endswith(">2024-01-15 11:30 CET</time>")
    assert markup.time_tag(None) == '<span class="muted">unknown</span>'


def test_ago_says_how_long_ago_with_both_times_on_hover(request_in):
    request_in()
    html = markup.ago_tag(AT, AT + timedelta(minutes=3))
    assert html == '<time datetime="2024-01-15T10:30:05.123Z" title="2024-01-15 10:30:05 UTC (2024-01-15 10:30:05 UTC)">3 minutes ago</time>'
    assert markup.ago_tag(None, AT) == '<span class="muted">never</span>'


@pytest.mark.parametrize(
    ("value", "html"),
    [
        ("<script>alert(1)</script>", '<bdi title="&lt;script&gt;alert(1)&lt;/script&gt;">&lt;script&gt;alert(1)&lt;/script&gt;</bdi>'),
        ('" onmouseover="x', '<bdi title="&#34; onmouseover=&#34;x">&#34; onmouseover=&#34;x</bdi>'),
        ("a\u202eb\x00", '<bdi title="a[U+202E]b[U+0000]">a[U+202E]b[U+0000]</bdi>'),
        ("", '<span class="muted"></span>'),
        (None, '<span class="muted"></span>'),
    ],
)
def test_untrusted_text_is_escaped_marked_and_isolated(value, html):
    assert markup.untrusted(value) == html


def test_long_untrusted_text_is_cut_with_the_whole_text_one_click_away():
    html = markup.untrusted("<b>" + "x" * 200, 10)
    assert html.startswith('<details class="long-text"><summary><bdi>&lt;b&gt;xxxxxx…</bdi> ')
    assert '<span class="muted">(203 characters, show all)</span>' in html
    assert html.endswith(f'<bdi class="full-text">&lt;b&gt;{"x" * 200}</bdi></details>')
    assert markup.untrusted("", empty="<none>") == '<span class="muted">&lt;none&gt;</span>'


@pytest.mark.parametrize(
    ("url", "html"),
    [
        (None, '<span class="muted">Direct</span>'),
        (
            "https://example.com/?q=<x>&a=\"1\"",
            '<a class="referrer" href="https://example.com/?q=&lt;x&gt;&amp;a=&#34;1&#34;" rel="noopener noreferrer nofollow" '
            'target="_blank" title="https://example.com/?q=&lt;x&gt;&amp;a=&#34;1&#34;"><bdi>example.com</bdi></a>',
        ),
        ("javascript:alert(1)", '<bdi title="javascript:alert(1)">javascript:alert(1)</bdi> <span class="muted">(not linked)</span>'),
        ("https://a.example/\u202e", '<bdi title="https://a.example/[U+202E]">https://a.example/[U+202E]</bdi> <span class="muted">(not linked)</span>'),
    ],
)
def test_referrers_link_only_clean_http_urls_and_show_their_host(url, html):
    assert markup.referrer_link(url) == html


OWN = frozenset({"shop.example"})


@pytest.mark.parametrize(
    ("url", "previous", "shown"),
    [
        ("https://shop.example/cart", "/cart", '<span class="muted">previous page</span>'),
        ("https://shop.example/cart?step=2", "/cart", "<bdi>/cart?step=2</bdi>"),
        ("https://shop.example/<b>", None, "<bdi>/&lt;b&gt;</bdi>"),
        ("https://www.google.com/search?q=shop", "/search?q=shop", "<bdi>www.google.com</bdi>"),
    ],
)
def test_a_referrer_on_the_own_site_is_its_path_or_the_previous_page(url, previous, shown):
    html = markup.referrer_link(url, previous, OWN)
    assert html.endswith(f'title="{markup.escape(url)}">{shown}</a>')


def test_a_long_referrer_is_shortened_on_the_page_and_whole_on_hover():
    url = "https://shop.example/" + "p" * 100
    html = markup.referrer_link(url, None, OWN)
    assert f'title="{url}"' in html and f"<bdi>/{'p' * 58}…</bdi>" in html


def test_filtered_text_is_marked_after_escaping():
    pattern = re.compile(re.escape("a&b"), re.IGNORECASE)
    assert markup.untrusted("<A&B> and a&b", highlight=pattern) == (
        '<bdi title="&lt;A&amp;B&gt; and a&amp;b">&lt;<mark>A&amp;B</mark>&gt; and <mark>a&amp;b</mark></bdi>'
    )
    amp = re.compile(re.escape("amp"), re.IGNORECASE)  # never matches inside an entity
    assert markup.untrusted("&", highlight=amp) == '<bdi title="&amp;">&amp;</bdi>'
    long = markup.untrusted("x" * 30 + "needle", 10, highlight=re.compile("needle"))
    assert "<mark>" not in long.split("</summary>")[0] and '<bdi class="full-text">' + "x" * 30 + "<mark>needle</mark>" in long


@pytest.mark.parametrize(
    ("parts", "expected"),
    [
        (("desktop", "chrome", "windows"), (("device", "desktop", "Desktop"), ("browser", "chrome", "Chrome"), ("os", "windows", "Windows"))),
        (("Mobile", "Samsung Internet", "macOS"), (("device", "mobile", "Mobile"), ("browser", "other", "Samsung Internet"), ("os", "macos", "macOS"))),
        ((None, "", "Mac OS"), (("device", "other", "Unknown"), ("browser", "other", "Unknown"), ("os", "macos", "Mac OS"))),
    ],
)
def test_a_sessions_environment_names_its_icons_and_labels(parts, expected):
    assert environment(*parts) == expected


class Sess:
    def __init__(self, device=None, browser=None, os=None, country=None):
        self.device, self.browser, self.os, self.country = device, browser, os, country


def test_a_sessions_environment_draws_icons_labels_and_the_country(request_in):
    request_in()
    html = markup.session_environment(Sess("desktop", "chrome", "macos", "GB"))
    assert html == (
        '<span class="env"><svg class="icon" aria-hidden="true" focusable="false"><use href="/static/icons.svg#device-desktop"></use></svg> Desktop</span> '
        '<span class="env"><svg class="icon" aria-hidden="true" focusable="false"><use href="/static/icons.svg#browser-chrome"></use></svg> Chrome</span> '
        '<span class="env"><svg class="icon" aria-hidden="true" focusable="false"><use href="/static/icons.svg#os-macos"></use></svg> macOS</span> '
        '<span class="env"><span class="country-code" aria-hidden="true">GB</span> United Kingdom</span>'
    )
    assert markup.session_environment(Sess()).endswith('<span class="env">Unknown country</span>')


@pytest.mark.parametrize("size", [10, 1000])  # short values are cached, long ones are not
def test_a_hostile_environment_is_escaped(request_in, size):
    request_in()
    hostile = '<img src=x onerror="alert(1)">' + "x" * size
    html = markup.session_environment(Sess(hostile, hostile, hostile, hostile))
    assert "<img" not in html and "&lt;img src=x onerror=&#34;alert(1)&#34;&gt;" in html
    assert html.count("#device-other") == 1 and html.count("#os-other") == 1
