"""Asking for a visitor when nobody can be asked: the answer says why, it never raises,
and the visitor view turns each outcome into its own HTTP status."""
from __future__ import annotations

import pytest

from dashboard.lookup import Lookup, NoSiteConfigured, SiteSearch, UnknownSite, VisitorAnswer, VisitorService
from dashboard.postmetric.errors import ServiceUnavailable
from dashboard.sites import SiteRef
from dashboard.visitors.view import status_of
from tests.conftest import make_settings

# Port 9 (discard) on loopback: never asked in these tests, and nothing beyond this machine.
SHOP = SiteRef("shop", "Shop", "http://127.0.0.1:9", "pm_" + "c" * 64)


@pytest.fixture
def service(tmp_path):
    def with_sites(*sites: SiteRef) -> VisitorService:
        return VisitorService(make_settings(tmp_path, None), sites=lambda: list(sites))

    return with_sites


@pytest.mark.parametrize("site", [None, "shop"])
def test_no_site_configured_is_an_answer_of_its_own(service, site):
    answer = service().find("visitor_123", site=site)
    assert isinstance(answer.not_asked, NoSiteConfigured) and answer.no_site
    assert answer.search is None and answer.result is None and not answer.asked_postmetric
    assert answer.site == site
    assert "Admin → Sites" in answer.not_asked.sentence and "POSTMETRIC_API_KEY" in answer.not_asked.sentence


def test_an_unknown_site_is_named_safely_and_is_not_a_missing_one(service):
    answer = service(SHOP).find("visitor_123", site="blog\u202e" + "x" * 200)
    assert isinstance(answer.not_asked, UnknownSite) and not answer.no_site
    assert answer.result is None and not answer.asked_postmetric
    sentence = answer.not_asked.sentence
    assert sentence.startswith("There is no PostMetric site called “blog") and "\u202e" not in sentence
    assert "x" * 100 not in sentence  # a long name is cut


def failed(error) -> VisitorAnswer:
    return VisitorAnswer("shop", SiteSearch((Lookup(SHOP, None, None, False, False, error),)))


@pytest.mark.parametrize(
    ("answer", "status"),
    [
        (VisitorAnswer(None, None, NoSiteConfigured()), 503),
        (VisitorAnswer("blog", None, UnknownSite("blog")), 404),
        (failed(ServiceUnavailable()), 503),
        (failed(ServiceUnavailable(status_code=504)), 504),
    ],
)
def test_each_outcome_has_its_status(answer, status):
    assert status_of(answer) == status
