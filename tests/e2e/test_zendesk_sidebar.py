"""The whole Zendesk sidebar flow in Chromium, with no cookie of ours.

A host page on a second loopback origin (127.0.0.2) plays Zendesk's agent workspace: it
POSTs the signed token into an iframe of /embed/zendesk/<slug> and answers the ZAF SDK's
postMessage protocol as Zendesk's frame does (the handshake gets ``zaf.app.registered``; a
``get`` gets ``{id, result}``). A third origin (127.0.0.3) is refused by frame-ancestors.
"""
from __future__ import annotations

import json
import re
import threading
from contextlib import contextmanager
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Iterator

import pytest
from playwright.sync_api import Page, expect

from dashboard.demo.data import SIGNALS_CONTACT_AT, SIGNALS_VISITOR_ID
from tests.conftest import make_settings
from tests.support.zendesk import FIELD, SLUG, add_integration, claims, link_agent, sign

HOST_PAGE = """<!doctype html>
<html><head><meta charset="utf-8"><title>Ticket #4521 - Zendesk stand-in</title></head>
<body>
<h1>Ticket #4521</h1>
<form id="launch" method="post" target="app" action="{action}"><input type="hidden" name="token" value="{token}"></form>
<iframe id="app" name="app" title="Visitor Lookup app" width="320" height="600"></iframe>
<script>
  var DASHBOARD = {dashboard};
  var TICKET = {ticket};
  window.zafMessages = [];
  window.addEventListener("message", function (event) {{
    if (event.origin !== DASHBOARD) return;
    var message = JSON.parse(event.data), frame = document.getElementById("app").contentWindow;
    window.zafMessages.push(message);
    function reply(data) {{ frame.postMessage(JSON.stringify(data), DASHBOARD); }}
    if (message.key === "iframe.handshake") {{
      reply({{ key: "zaf.app.registered", message: {{
        context: {{ product: "support", location: "ticket_sidebar", ticketId: 4521 }},
        metadata: {{ appId: 1, installationId: 360001234, name: "Visitor Lookup" }} }} }});
    }} else if (message.request === "get") {{
      var result = {{ errors: {{}} }};
      message.params.forEach(function (path) {{ result[path] = TICKET[path]; }});
      reply({{ id: message.id, result: result }});
    }} else if (message.request === "invoke") {{
      reply({{ id: message.id, result: {{ errors: {{}} }} }});
    }}
  }});
  document.getElementById("launch").submit();
</script>
</body></html>"""


class Pages(BaseHTTPRequestHandler):
    pages: dict[str, str] = {}

    def do_GET(self):  # noqa: N802 (http.server's name)
        body = self.pages.get(self.path.split("?")[0])
        self.send_response(200 if body else 404)
        self.send_header("Content-Type", "text/html; charset=utf-8")
        self.end_headers()
        self.wfile.write((body or "not here").encode())

    def log_message(self, *args):  # keep the test output quiet
        pass


@contextmanager
def host_server(address: str) -> Iterator[tuple[ThreadingHTTPServer, str]]:
    """A tiny page server on ``address`` (a loopback address), stopped at the end."""
    handler = type("HostPages", (Pages,), {"pages": {}})
    server = ThreadingHTTPServer((address, 0), handler)
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
    thread.start()
    try:
        yield server, f"http://{address}:{server.server_port}"
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=5)


@pytest.fixture
def zendesk_host():
    with host_server("127.0.0.2") as host:
        yield host


@pytest.fixture
def settings(tmp_path, fake_api, zendesk_host):
    # The one origin allowed to frame /embed/zendesk: the stand-in's (test mode only).
    return make_settings(tmp_path, fake_api.url, zendesk_origin_for_tests=zendesk_host[1])


def host_page(dashboard_url: str, frame_origin: str, ticket: dict) -> str:
    action = f"{dashboard_url}/embed/zendesk/{SLUG}?origin={frame_origin}&app_guid=guid-1"
    return HOST_PAGE.format(action=action, token=sign(claims()), dashboard=json.dumps(dashboard_url), ticket=json.dumps(ticket))


TICKET = {f"ticket.customField:custom_field_{FIELD}": SIGNALS_VISITOR_ID, "ticket.createdAt": SIGNALS_CONTACT_AT, "ticket.id": 4521}


def test_the_sidebar_reads_the_ticket_and_shows_the_card_without_our_cookie(page: Page, app, live_server, zendesk_host):
    add_integration(app)
    link_agent(app, 1)
    server, host_url = zendesk_host
    server.RequestHandlerClass.pages["/ticket"] = host_page(live_server.url, host_url, TICKET)
    card_requests = []
    page.on("request", lambda request: card_requests.append(request) if "/card?" in request.url else None)

    page.goto(host_url + "/ticket")
    frame = page.frame_locator("#app")
    expect(frame.get_by_role("heading", name=SIGNALS_VISITOR_ID)).to_be_visible()
    expect(frame.get_by_role("link", name="Open the full view")).to_have_attribute("href", re.compile("ticket=4521"))
    expect(frame.locator("#card-status")).to_have_text("")  # "Reading the ticket…" is gone

    (request,) = card_requests
    assert request.headers["authorization"].startswith("Bearer ")
    assert "cookie" not in request.headers
    assert f"visitorId={SIGNALS_VISITOR_ID}" in request.url and "ticket=4521" in request.url
    asked = [message for message in page.evaluate("window.zafMessages") if message.get("request") == "get"]
    assert asked and f"ticket.customField:custom_field_{FIELD}" in asked[0]["params"]
    assert page.context.cookies() == []


def test_a_third_origin_may_not_frame_the_sidebar(page: Page, app, live_server, zendesk_host):
    add_integration(app)
    link_agent(app, 1)
    with host_server("127.0.0.3") as (server, third_url):
        # The stand-in's origin in the query, so the server answers the page: only the
        # browser's frame-ancestors check stands between it and the third origin.
        server.RequestHandlerClass.pages["/ticket"] = host_page(live_server.url, zendesk_host[1], TICKET)
        with page.expect_event("framenavigated", lambda frame: frame.url.startswith("chrome-error:")) as refused, \
                page.expect_response(lambda response: "/embed/zendesk/" in response.url) as answered:
            page.goto(third_url + "/ticket")
        assert answered.value.status == 200  # the server answered the page...
        assert "frame-ancestors " + zendesk_host[1] in answered.value.headers["content-security-policy"]
        assert refused.value.name == "app"  # ...and Chromium would not show it in the third origin's frame
        expect(page.frame_locator("#app").locator("#zendesk-sidebar")).to_have_count(0)
