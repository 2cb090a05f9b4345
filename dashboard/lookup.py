"""Looking a visitor up: which site, which client, through the cache.

This is the only place that turns a (site, visitor ID) into upstream calls; the visitor
view asks it (``VisitorService.find``) and hands the typed answer to the timeline
functions, the audit trail and the templates.
"""
from __future__ import annotations

import threading
from collections.abc import Callable, Hashable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import datetime

from dashboard import metrics
from dashboard.addresses import AddressPolicy
from dashboard.config import Settings
from dashboard.demo.data import is_staged_failure
from dashboard.formatting import shorten, visible_text
from dashboard.postmetric.budget import ANYONE, BudgetRegistry, FairPolicy, RateBudget, Spender
from dashboard.postmetric.cache import VisitorCache
from dashboard.postmetric.client import PostMetricClient
from dashboard.postmetric.errors import PostMetricError
from dashboard.postmetric.models import Visitor
from dashboard.progress import ProgressBoard
from dashboard.shared_state import RedisLink, RedisProgressBoard, RedisRateBudget, RedisVisitorCache
from dashboard.sites import SiteRef, sites_from_settings


class NoSiteConfigured(Exception):
    """No PostMetric site is set up, so there is nobody to ask."""

    @property
    def sentence(self) -> str:
        return (
            "No PostMetric site is configured. An admin must add one under Admin → Sites, or set "
            "POSTMETRIC_API_URL and POSTMETRIC_API_KEY on the server and restart it."
        )


class UnknownSite(Exception):
    """The URL names a site that does not exist (any more)."""

    @property
    def sentence(self) -> str:
        slug = self.args[0] if self.args else ""
        return (
            f"There is no PostMetric site called “{shorten(visible_text(slug), 80)}”. Open the view without the site "
            "parameter to ask every site."
        )


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
    cache: str = "miss"
    """hit, miss (this request asked PostMetric), coalesced (joined another's fetch) or stale."""

    @property
    def upstream_calls(self) -> int:
        """HTTP calls this request itself made to PostMetric."""
        return self.attempts if self.cache == "miss" else 0

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


@dataclass(frozen=True)
class VisitorAnswer:
    """What asking for a visitor produced, or why nobody was asked (``not_asked``).

    ``site`` is the site the view names: the one asked for, or, when every site was
    asked and one of several knew the visitor, that one (so that a shared URL does too).
    """

    site: str | None
    search: SiteSearch | None = None
    not_asked: NoSiteConfigured | UnknownSite | None = None

    @property
    def result(self) -> Lookup | None:
        """The look-up the view shows (None when nobody was asked)."""
        return self.search.shown if self.search else None

    @property
    def no_site(self) -> bool:
        """No site is configured at all: a look-up was tried, and nobody could answer."""
        return isinstance(self.not_asked, NoSiteConfigured)

    @property
    def status(self) -> int:
        """The HTTP status of a view of this answer: the upstream failure's own, or why
        nobody was asked (no site at all: 503; a site that does not exist: 404)."""
        if self.not_asked is not None:
            return 503 if self.no_site else 404
        result = self.result
        if result is not None and result.visitor is not None:
            return 200
        return result.error.status_code if result is not None and result.error else 502

    @property
    def asked_postmetric(self) -> bool:
        """Whether PostMetric was asked (a cache miss, a refresh, a live tick)."""
        return self.search is not None and any(not lookup.from_cache for lookup in self.search.lookups)


def fair_policy(settings: Settings) -> FairPolicy:
    """How each key's budget is shared out, from the settings."""
    return FairPolicy(
        reserve=settings.budget_interactive_reserve,
        agent_share=settings.budget_agent_share,
        agent_minimum=settings.budget_agent_minimum,
    )


class VisitorService:
    """Holds one client per site, one shared budget per key, and the visitor cache."""

    def __init__(self, settings: Settings, sites: Callable[[], list[SiteRef]] | None = None) -> None:
        self.settings = settings
        policy = fair_policy(settings)
        limit = settings.upstream_budget_per_minute
        self.cache: VisitorCache | RedisVisitorCache = VisitorCache(
            ttl=settings.visitor_cache_ttl,
            max_entries=settings.visitor_cache_max_entries,
            max_bytes=settings.visitor_cache_max_bytes,
        )
        self.budgets = BudgetRegistry(limit=limit, window=60.0, policy=policy)
        self.progress: ProgressBoard | RedisProgressBoard = ProgressBoard()
        self.redis: RedisLink | None = None
        if settings.redis_url:
            # Shared by every instance and worker; each falls back on its in-process twin.
            self.redis = link = RedisLink(settings.redis_url)
            # A fetch holds its flight for at most its deadline and one last read.
            held = settings.upstream_deadline + settings.upstream_read_timeout + 5
            self.cache = RedisVisitorCache(link, self.cache, ttl=settings.visitor_cache_ttl, lock_seconds=held)
            self.progress = RedisProgressBoard(link, self.progress, ttl_seconds=held)

            def shared_budget(fingerprint: str) -> RedisRateBudget:
                local = RateBudget(limit, 60.0, policy=policy)
                return RedisRateBudget(link, local, fingerprint, limit=limit, policy=policy)

            self.budgets = BudgetRegistry(limit=limit, window=60.0, policy=policy, factory=shared_budget)
        self._site_source = sites or (lambda: sites_from_settings(settings))
        self._clients: dict[tuple[str, str, str], PostMetricClient] = {}
        self._lock = threading.Lock()
        # Every connection is checked: a site's key goes to allowed addresses only.
        self.address_policy = AddressPolicy.from_settings(settings)

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

    def client_for(self, site: SiteRef, *, budgeted: bool = True) -> PostMetricClient:
        """The site's client; ``budgeted=False`` gives one that neither spends nor learns
        the key's shared rate budget (for the demo stand-in's failures on purpose)."""
        identity = (site.slug, site.base_url, site.api_key, budgeted)
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
                    budget=self.budgets.get(site.api_key) if budgeted else None,
                    address_policy=self.address_policy,
                    pool_size=self.settings.server_threads,
                    observer=metrics.upstream_observer(site.slug),
                )
                self._clients[identity] = client
            return client

    @staticmethod
    def cache_key(site: SiteRef, visitor_id: str) -> tuple[str, str, str]:
        # The base URL is part of the key: data fetched before an admin pointed the site
        # elsewhere must not be served as the new address's answer.
        return (site.slug, site.base_url, visitor_id)

    def lookup(
        self,
        visitor_id: str,
        *,
        site_slug: str | None = None,
        refresh: bool = False,
        watcher: Hashable | None = None,
        spender: Spender = ANYONE,
        request_id: str | None = None,
    ) -> Lookup:
        """The visitor from one site (the first when none is named), from the cache or from
        PostMetric; errors come back in the result.

        ``watcher`` (an agent) can ask ``progress.for_watcher`` meanwhile whether a fetch
        it waits for is being retried.
        """
        return self.lookup_at(
            self.site(site_slug), visitor_id, refresh=refresh, watcher=watcher, spender=spender, request_id=request_id
        )

    def find(
        self,
        visitor_id: str,
        *,
        site: str | None = None,
        refresh: bool = False,
        watcher: Hashable | None = None,
        background: bool = False,
        request_id: str | None = None,
    ) -> VisitorAnswer:
        """The named site's answer, or every site's when none is named; never raises for
        a missing or unknown site (the answer says so instead). ``request_id`` goes to
        PostMetric with each call this look-up makes.

        Requests PostMetric gets are spent on ``watcher``'s account (an agent), as
        background work (live ticks, exports) when ``background``: see ``FairPolicy``."""
        spender = Spender(None if watcher is None else str(watcher), background)
        try:
            if site:
                search = SiteSearch(
                    (self.lookup(visitor_id, site_slug=site, refresh=refresh, watcher=watcher, spender=spender, request_id=request_id),)
                )
            else:
                search = self.search(visitor_id, refresh=refresh, watcher=watcher, spender=spender, request_id=request_id)
                if len(search.lookups) > 1 and search.found:
                    site = search.shown.site.slug
        except (NoSiteConfigured, UnknownSite) as problem:
            return VisitorAnswer(site, None, problem)
        return VisitorAnswer(site, search)

    def answers_at_once(self, visitor_id: str, *, site: str | None = None) -> bool:
        """Whether ``find`` (without refresh) would answer without asking PostMetric: every
        site it would ask holds a fresh copy, or there is nobody to ask."""
        try:
            sites = [self.site(site)] if site else self.sites()
        except (NoSiteConfigured, UnknownSite):
            return True
        return all(self.cache.peek(self.cache_key(each, visitor_id)) is not None for each in sites)

    def search(
        self,
        visitor_id: str,
        *,
        refresh: bool = False,
        watcher: Hashable | None = None,
        spender: Spender = ANYONE,
        request_id: str | None = None,
    ) -> SiteSearch:
        """Ask every site at once (each through the cache); waits as long as the slowest."""
        sites = self.sites()
        if not sites:
            raise NoSiteConfigured()

        def ask(site: SiteRef) -> Lookup:
            return self.lookup_at(site, visitor_id, refresh=refresh, watcher=watcher, spender=spender, request_id=request_id)

        if len(sites) == 1:
            return SiteSearch((ask(sites[0]),))
        with ThreadPoolExecutor(max_workers=len(sites), thread_name_prefix="site-search") as pool:
            lookups = pool.map(ask, sites)
            return SiteSearch(tuple(lookups))

    def lookup_at(
        self,
        site: SiteRef,
        visitor_id: str,
        *,
        refresh: bool = False,
        watcher: Hashable | None = None,
        spender: Spender = ANYONE,
        request_id: str | None = None,
    ) -> Lookup:
        # The demo stand-in's failures on purpose (fail-429 answers 429 with Retry-After:
        # 30) must not teach the shared key's budget, or trying one would block every
        # other demo look-up, Test connection included, for 30 s.
        client = self.client_for(site, budgeted=not is_staged_failure(site.api_key, visitor_id))
        # The base URL is part of the key: data fetched before an admin pointed the site
        # elsewhere must not be served as the new address's answer.
        key = self.cache_key(site, visitor_id)
        fetched_here = False

        def fetch():
            nonlocal fetched_here
            fetched_here = True
            try:
                return client.fetch_visitor(
                    visitor_id,
                    on_retry=lambda notice: self.progress.retrying(key, notice),
                    spender=spender,
                    request_id=request_id,
                )
            finally:
                self.progress.finished(key)
                if client.budget is not None:
                    metrics.budget_left(site.slug, client.budget.remaining())

        try:
            with self.progress.watching(watcher, key):
                outcome = self.cache.get_or_fetch(key, fetch, refresh=refresh)
        except PostMetricError as error:
            cache = "miss" if fetched_here else "coalesced"
            metrics.cache_outcome(cache)
            return Lookup(site, None, None, False, False, error, getattr(error, "attempts", 1), cache)
        result = outcome.result
        if outcome.stale:
            cache = "stale"
        elif outcome.from_cache:
            cache = "hit"
        else:
            cache = "miss" if fetched_here else "coalesced"
        metrics.cache_outcome(cache)
        return Lookup(
            site,
            result.visitor,
            result.fetched_at,
            outcome.from_cache,
            outcome.stale,
            outcome.error,
            result.attempts,
            cache,
        )
