"""Looking a visitor up: which site, which client, through the cache.

This is the only place that turns a (site, visitor ID) into upstream calls; routes ask
it and hand the typed result to the timeline functions and the templates.
"""
from __future__ import annotations

import threading
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import datetime

from dashboard.config import Settings
from dashboard.postmetric.budget import BudgetRegistry
from dashboard.postmetric.cache import VisitorCache
from dashboard.postmetric.client import PostMetricClient
from dashboard.postmetric.errors import PostMetricError
from dashboard.postmetric.models import Visitor
from dashboard.sites import SiteRef, sites_from_settings


class NoSiteConfigured(Exception):
    """No PostMetric site is set up, so there is nobody to ask."""


class UnknownSite(Exception):
    """The URL names a site that does not exist (any more)."""


@dataclass(frozen=True)
class Lookup:
    """What one look-up produced: the data (maybe stale), or the error, never both missing."""

    site: SiteRef
    visitor: Visitor | None
    fetched_at: datetime | None
    from_cache: bool
    stale: bool
    error: PostMetricError | None
    attempts: int = 1

    @property
    def outcome(self) -> str:
        """A short word for the audit trail."""
        if self.visitor is None:
            return self.error.kind if self.error else "error"
        if self.stale:
            return "stale"
        return "unknown" if self.visitor.is_unknown else "ok"

    @property
    def knows_visitor(self) -> bool:
        return self.visitor is not None and not self.visitor.is_unknown


@dataclass(frozen=True)
class SiteSearch:
    """One visitor asked of every site at once: one ``Lookup`` per site, in site order."""

    lookups: tuple[Lookup, ...]

    @property
    def found(self) -> list[Lookup]:
        """The sites that know the visitor."""
        return [lookup for lookup in self.lookups if lookup.knows_visitor]

    @property
    def failed(self) -> list[Lookup]:
        """The sites that could not be asked."""
        return [lookup for lookup in self.lookups if lookup.visitor is None]

    @property
    def shown(self) -> Lookup:
        """What the view shows: the first site that knows the visitor; else an answer that
        says nobody does; else (every site failed) the first failure."""
        answered = [lookup for lookup in self.lookups if lookup.visitor is not None]
        return (self.found or answered or list(self.lookups))[0]

    @property
    def others_found(self) -> list[Lookup]:
        return self.found[1:]


class VisitorService:
    """Holds one client per site, one shared budget per key, and the visitor cache."""

    def __init__(self, settings: Settings, sites: Callable[[], list[SiteRef]] | None = None) -> None:
        self.settings = settings
        self.cache = VisitorCache(ttl=settings.visitor_cache_ttl)
        self.budgets = BudgetRegistry(limit=settings.upstream_budget_per_minute, window=60.0)
        self._site_source = sites or (lambda: sites_from_settings(settings))
        self._clients: dict[tuple[str, str, str], PostMetricClient] = {}
        self._lock = threading.Lock()

    def sites(self) -> list[SiteRef]:
        return self._site_source()

    def site(self, slug: str | None) -> SiteRef:
        sites = self.sites()
        if not sites:
            raise NoSiteConfigured()
        if not slug:
            return sites[0]
        for site in sites:
            if site.slug == slug:
                return site
        raise UnknownSite(slug)

    def client_for(self, site: SiteRef) -> PostMetricClient:
        identity = (site.slug, site.base_url, site.api_key)
        with self._lock:
            client = self._clients.get(identity)
            if client is None:
                client = PostMetricClient(
                    site.base_url,
                    site.api_key,
                    connect_timeout=self.settings.upstream_connect_timeout,
                    read_timeout=self.settings.upstream_read_timeout,
                    deadline=self.settings.upstream_deadline,
                    max_body_bytes=self.settings.upstream_max_body_bytes,
                    budget=self.budgets.get(site.api_key),
                )
                self._clients[identity] = client
            return client

    def lookup(self, visitor_id: str, *, site_slug: str | None = None, refresh: bool = False) -> Lookup:
        """The visitor from one site (the first when none is named), from the cache or from
        PostMetric; errors come back in the result."""
        return self.lookup_at(self.site(site_slug), visitor_id, refresh=refresh)

    def search(self, visitor_id: str, *, refresh: bool = False) -> SiteSearch:
        """Ask every site at once (each through the cache); waits as long as the slowest."""
        sites = self.sites()
        if not sites:
            raise NoSiteConfigured()
        if len(sites) == 1:
            return SiteSearch((self.lookup_at(sites[0], visitor_id, refresh=refresh),))
        with ThreadPoolExecutor(max_workers=len(sites), thread_name_prefix="site-search") as pool:
            lookups = pool.map(lambda site: self.lookup_at(site, visitor_id, refresh=refresh), sites)
            return SiteSearch(tuple(lookups))

    def lookup_at(self, site: SiteRef, visitor_id: str, *, refresh: bool = False) -> Lookup:
        client = self.client_for(site)
        try:
            outcome = self.cache.get_or_fetch(
                (site.slug, visitor_id), lambda: client.fetch_visitor(visitor_id), refresh=refresh
            )
        except PostMetricError as error:
            return Lookup(site, None, None, False, False, error)
        result = outcome.result
        return Lookup(
            site,
            result.visitor,
            result.fetched_at,
            outcome.from_cache,
            outcome.stale,
            outcome.error,
            result.attempts,
        )
