"""PostMetric sites: which base URL and key a look-up uses.

Two kinds. The environment's site (POSTMETRIC_API_URL/POSTMETRIC_API_KEY, slug
``default``) is configuration: it lives only in the memory of the instance whose
environment defines it, and is never written to or read from the database, so instances
that share a database but not an environment never redirect each other's look-ups (each
keeps its own URL and key; a restart with another environment changes only that
instance). Admins' sites live in the database (keys encrypted at rest) and are shared by
every instance. Look-ups read the list through :class:`SiteDirectory`, which keeps the
database's part for a few seconds so that a look-up costs no query; an admin's change
clears it at once in the process that made it, and other workers see it within ``ttl``
seconds.
"""
from __future__ import annotations

import logging
import re
import threading
import time
import unicodedata
from collections.abc import Callable
from dataclasses import dataclass, field

from collections.abc import Sequence

from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from dashboard.addresses import AddressRefused, check_base_url
from dashboard.config import Settings
from dashboard.encryption import KeyBox, UnreadableSecret

log = logging.getLogger("dashboard.sites")

ENVIRONMENT_SLUG = "default"
ENVIRONMENT_NAME = "Default site"
SITE_LIST_TTL = 5.0


@dataclass(frozen=True)
class SiteRef:
    """One PostMetric website: its name, its API's base URL and its key (server-side only)."""

    slug: str
    name: str
    base_url: str
    api_key: str = field(repr=False)
    # Where this site's ticket references lead (see dashboard.ticket_links); None: plain text.
    ticket_url_template: str | None = None


def sites_from_settings(settings: Settings) -> list[SiteRef]:
    """The sites this instance's environment defines (the ``default`` site, or none)."""
    if settings.postmetric_api_url and settings.postmetric_api_key:
        return [
            SiteRef(
                ENVIRONMENT_SLUG,
                ENVIRONMENT_NAME,
                settings.postmetric_api_url,
                settings.postmetric_api_key,
                settings.postmetric_ticket_url_template,
            )
        ]
    return []


def slugify(name: str) -> str:
    """A URL-friendly name: lower-case ASCII letters, digits and dashes."""
    ascii_name = unicodedata.normalize("NFKD", name).encode("ascii", "ignore").decode()
    slug = re.sub(r"[^a-z0-9]+", "-", ascii_name.lower()).strip("-")
    return slug[:48] or "site"


def unique_slug(session: Session, name: str, column=None) -> str:
    """A slug for ``name`` not yet in ``column`` (default: the sites' slugs)."""
    from dashboard.models import Site

    column = Site.slug if column is None else column
    base = slugify(name)
    taken = set(session.scalars(select(column).where(column.startswith(base))))
    if column is Site.slug:
        # The environment's slug stays free: an instance whose environment defines it must
        # never find a database site under the same name.
        taken.add(ENVIRONMENT_SLUG)
    slug, n = base, 2
    while slug in taken:
        slug, n = f"{base}-{n}", n + 1
    return slug


def store_key(site, api_key: str, box: KeyBox) -> None:
    """Put ``api_key`` on ``site`` encrypted, with the last four characters for display."""
    site.api_key_encrypted = box.encrypt(api_key)
    site.api_key_last4 = api_key[-4:]


class SiteDirectory:
    """This instance's sites as ``SiteRef``s: the environment's first (it answers look-ups
    that name no site), then the database's, read at most every ``ttl`` seconds."""

    def __init__(
        self,
        session_factory: sessionmaker,
        box: KeyBox,
        *,
        configured: Sequence[SiteRef] = (),
        ttl: float = SITE_LIST_TTL,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.configured = tuple(configured)
        self._session_factory = session_factory
        self._box = box
        self._ttl = ttl
        self._clock = clock
        self._lock = threading.Lock()
        self._sites: list[SiteRef] | None = None
        self._loaded_at = 0.0

    def sites(self) -> list[SiteRef]:
        with self._lock:
            if self._sites is None or self._clock() - self._loaded_at >= self._ttl:
                self._sites = self._load()
                self._loaded_at = self._clock()
            return [*self.configured, *self._sites]

    def invalidate(self) -> None:
        with self._lock:
            self._sites = None

    def _load(self) -> list[SiteRef]:
        from dashboard.models import Site

        refs = []
        configured = {ref.slug for ref in self.configured}
        with self._session_factory() as session:
            for site in session.scalars(select(Site).order_by(Site.id)):
                if site.slug in configured:
                    log.warning("site %s: the environment defines a site of that name, which takes its place here; an admin can delete the database's one", site.slug)
                    continue
                try:
                    api_key = self._box.decrypt(site.api_key_encrypted)
                except UnreadableSecret:
                    log.warning("site %s: its API key cannot be decrypted (SECRET_KEY or DASHBOARD_ENCRYPTION_KEY changed?); an admin must enter it again", site.slug)
                    continue
                try:
                    check_base_url(site.base_url)
                except AddressRefused as problem:
                    # Saved before the form refused such URLs: one bad site must not break
                    # every look-up; its Test connection says what to correct.
                    log.warning("site %s: its base URL cannot be used (%s); an admin must correct it", site.slug, problem)
                    continue
                refs.append(SiteRef(site.slug, site.name, site.base_url, api_key, site.ticket_url_template))
        return refs


def rotate_site_keys(session_factory: sessionmaker, box: KeyBox) -> None:
    """Re-encrypt the database's keys under the current encryption key (after
    DASHBOARD_ENCRYPTION_KEY is set or changed). Instances starting together may both do
    it: each writes a valid token of the same key, so the last write is as good."""
    from dashboard.models import Site

    with session_factory() as session:
        for site in session.scalars(select(Site)):
            if box.is_current(site.api_key_encrypted):
                continue
            try:
                site.api_key_encrypted = box.rotate(site.api_key_encrypted)
            except UnreadableSecret:
                continue  # reported when the list is read
        session.commit()
