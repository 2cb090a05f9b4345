"""One route, two renders: the full page, or only the block an htmx request swaps.

A page template names its swappable parts as blocks; a route passes which htmx target
id maps to which block. Boosted requests and history restores get the full page, as
does any request opened directly, so every pushed URL works on its own.
"""
from __future__ import annotations

from typing import Any, Mapping

from flask import Flask, Response, make_response, render_template, request
from jinja2_fragments.flask import render_block

from dashboard import formatting, markup, timeline
from dashboard.zones import agent_zone


def wants_fragment() -> bool:
    htmx = request.htmx
    return bool(htmx) and not htmx.boosted and not htmx.history_restore_request


def render_page(
    template: str,
    blocks: Mapping[str, str],
    *,
    status: int = 200,
    headers: Mapping[str, str] | None = None,
    target: str | None = None,
    **context: Any,
) -> Response:
    """Render ``template`` whole, or the block that ``blocks`` maps the htmx target to.

    A fragment carries its real status too: the page's ``responseHandling`` (htmx-config
    in base.html) swaps 4xx/5xx answers in place, so logs and monitors count a failed
    look-up as the failure it is. ``target`` overrides the element htmx named (for a
    response that retargets itself).
    """
    block = blocks.get(target or request.htmx.target or "") if wants_fragment() else None
    if block is not None:
        response = make_response(render_block(template, block, **context), status)
    else:
        response = make_response(render_template(template, **context), status)
    response.vary.add("HX-Request")
    for name, value in (headers or {}).items():
        response.headers[name] = value
    return response


def htmx_redirect(location: str) -> Response:
    """Send an htmx caller to a whole new page (never a page inside a fragment)."""
    response = make_response("", 200)
    response.headers["HX-Redirect"] = location
    response.vary.add("HX-Request")
    return response


def init_app(app: Flask) -> None:
    """The filters and globals every page uses (a blueprint registers its own)."""
    app.jinja_env.filters.update(
        iso=formatting.iso,
        localtime=lambda moment, seconds=True: formatting.format_datetime(moment, agent_zone(), seconds=seconds),
        visible=formatting.visible_text,
        shorten=formatting.shorten,
        duration=formatting.format_duration,
        contact_label=timeline.contact_label,
    )
    app.jinja_env.globals.update(
        # Drawn on every timeline row and session: Python, not macros (see dashboard.markup).
        session_environment=markup.session_environment,
        time_tag=markup.time_tag,
        ago_tag=markup.ago_tag,
        untrusted=markup.untrusted,
        referrer_link=markup.referrer_link,
    )

    @app.context_processor
    def macros() -> dict[str, Any]:
        # A block rendered alone does not run its template's top-level {% import %},
        # so the shared macros come in through the context for full pages and blocks alike.
        return {"m": app.jinja_env.get_template("macros.html").module}

    @app.after_request
    def vary_on_htmx(response: Response) -> Response:
        # Any page may answer differently to htmx; caches must keep the two apart.
        response.vary.add("HX-Request")
        return response
