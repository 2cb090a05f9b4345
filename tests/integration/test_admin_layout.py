"""The admin pages offer only what can succeed, ask before destroying, and show the
audit trail's outcomes as labelled badges with links to the visitors."""
from __future__ import annotations

from dashboard import audit
from dashboard.admin.audit import OUTCOMES, outcome_badge
from dashboard.postmetric.errors import ServerError
from tests.conftest import add_agent
from tests.support.accounts import ADMIN_EMAIL, ADMIN_PASSWORD, logged_in_client, make_admin, post
from tests.support.html import soup


def actions_of(html: str, row_id: str) -> list[str]:
    row = soup(html).select_one(f"#{row_id}")
    assert row is not None, row_id
    return [button.get_text(strip=True) for button in row.select(".actions button")]


def test_the_only_admin_is_offered_neither_disable_nor_make_agent(app):
    make_admin(app)
    other = add_agent(app)
    admin = logged_in_client(app, ADMIN_EMAIL, ADMIN_PASSWORD)
    page = admin.get("/admin/agents").text
    assert actions_of(page, "agent-1") == ["Reset password"]
    assert "The only admin" in soup(page).select_one("#agent-1").get_text()
    assert actions_of(page, f"agent-{other}") == ["Disable", "Reset password", "Make admin"]

    post(admin, f"/admin/agents/{other}/role", {"role": "admin"})
    page = admin.get("/admin/agents").text
    assert actions_of(page, "agent-1") == ["Reset password", "Make agent"]  # never "Disable" on oneself
    assert actions_of(page, f"agent-{other}") == ["Disable", "Reset password", "Make agent"]


def test_destructive_actions_ask_first(app):
    make_admin(app)
    other = add_agent(app)
    admin = logged_in_client(app, ADMIN_EMAIL, ADMIN_PASSWORD)
    row = soup(admin.get("/admin/agents").text).select_one(f"#agent-{other}")
    questions = {form.button.get_text(strip=True): form.get("data-confirm") for form in row.select("form")}
    assert "agent@example.com" in questions["Disable"] and "logged out everywhere" in questions["Disable"]
    assert "Reset the password of agent@example.com" in questions["Reset password"]
    assert questions["Make admin"] is None
    sites = soup(admin.get("/admin/sites").text)
    assert not sites.select("form[action$='/delete']")  # the environment's site cannot be deleted


def test_audit_outcomes_are_labelled_badges_and_visitors_are_links(app):
    make_admin(app)
    admin = logged_in_client(app, ADMIN_EMAIL, ADMIN_PASSWORD)
    engine = app.extensions["db_engine"]
    for visitor_id, outcome in (("visitor_123", "ok"), ("odd/id ?#", "server_error"), ("v3", "something_new")):
        audit.record_event(engine, agent_id=1, site="default", visitor_id=visitor_id, action="lookup", outcome=outcome)
    page = soup(admin.get("/admin/audit").text)
    badges = {badge["data-outcome"]: badge for badge in page.select(".audit-table .outcome")}
    assert badges["ok"].get_text() == "Found" and "outcome-ok" in badges["ok"]["class"]
    assert badges["server_error"].get_text() == ServerError.title and "outcome-error" in badges["server_error"]["class"]
    assert badges["something_new"].get_text() == "something_new"
    links = {a.get_text(strip=True): a["href"] for a in page.select(".audit-table td[data-label='Visitor ID'] a")}
    assert links["visitor_123"] == "/visitors/visitor_123?site=default"
    assert links["odd/id ?#"] == "/visitor?visitorId=odd%2Fid+%3F%23&site=default"
    assert admin.get(links["visitor_123"]).status_code == 200
    # And as a fragment, when the filter swaps the results.
    fragment = admin.get("/admin/audit?visitor=visitor_123", headers={"HX-Request": "true", "HX-Target": "audit-results"})
    assert soup(fragment.text).select_one(".outcome").get_text() == "Found"


def test_every_error_kind_has_a_label():
    assert outcome_badge("unauthorized") == ("PostMetric rejected the API key", "error")
    assert outcome_badge("rate_limited")[1] == "warn"
    assert all(label and not label.islower() for label, _ in OUTCOMES.values())
