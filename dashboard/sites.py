"""PostMetric sites: which base URL and key a look-up uses.

Sites live in the database (managed by admins, keys encrypted at rest). The environment's
POSTMETRIC_API_URL/POSTMETRIC_API_KEY define the default site, written to the database at
every start. Look-ups read the list through :class:`SiteDirectory`, which keeps it for a
few seconds so that a look-up costs no query; an admin's change clears it at once in the
process that made it, and other server workers see it within ``ttl`` seconds.
"""
from __future__ import annotations

import logging
import re
import threading
import time
import unicodedata
from collections.abc import Callable
from dataclasses import dataclass, field

from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
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


def sites_from_settings(settings: Settings) -> list[SiteRef]:
    if settings.postmetric_api_url and settings.postmetric_api_key:
        return [SiteRef(ENVIRONMENT_SLUG, ENVIRONMENT_NAME, settings.postmetric_api_url, settings.postmetric_api_key)]
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
    slug, n = base, 2
    while slug in taken:
        slug, n = f"{base}-{n}", n + 1
    return slug


def store_key(site, api_key: str, box: KeyBox) -> None:
    """Put ``api_key`` on ``site`` encrypted, with the last four characters for display."""
    site.api_key_encrypted = box.encrypt(api_key)
    site.api_key_last4 = api_key[-4:]


class SiteDirectory:
    """The configured sites as ``SiteRef``s, read from the database at most every ``ttl`` s."""

    def __init__(
        self,
        session_factory: sessionmaker,
        box: KeyBox,
        *,
        ttl: float = SITE_LIST_TTL,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
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
            return list(self._sites)

    def invalidate(self) -> None:
        with self._lock:
            self._sites = None

    def _load(self) -> list[SiteRef]:
        from dashboard.models import Site

        refs = []
        with self._session_factory() as session:
            # The environment's site first: it answers look-ups that name no site.
            rows = session.scalars(select(Site).order_by(Site.from_environment.desc(), Site.id))
            for site in rows:
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
                refs.append(SiteRef(site.slug, site.name, site.base_url, api_key))
        return refs


def sync_environment_site(session_factory: sessionmaker, settings: Settings, box: KeyBox) -> None:
    """Write the environment's site to the database; re-encrypt keys under the current key.

    Several server workers may run this at once: a lost race to insert is retried as an update.
    """
    for _attempt in range(3):
        try:
            with session_factory() as session:
                _sync(session, settings, box)
                session.commit()
            return
        except IntegrityError:
            continue
    raise RuntimeError("could not write the environment's PostMetric site to the database")


def _sync(session: Session, settings: Settings, box: KeyBox) -> None:
    from dashboard.models import Site

    for site in session.scalars(select(Site)):
        if box.is_current(site.api_key_encrypted):
            continue
        try:
            site.api_key_encrypted = box.rotate(site.api_key_encrypted)
        except UnreadableSecret:
            continue  # reported when the list is read; the environment's site is rewritten below
    for ref in sites_from_settings(settings):
        site = session.scalars(select(Site).where(Site.from_environment.is_(True))).first()
        if site is None:
            site = session.scalars(select(Site).where(Site.slug == ref.slug)).first()
        if site is None:
            site = Site(slug=ref.slug, name=ref.name)
            session.add(site)
        site.from_environment = True
        site.base_url = ref.base_url
        if not _holds_key(site, ref.api_key, box):
            store_key(site, ref.api_key, box)


def _holds_key(site, api_key: str, box: KeyBox) -> bool:
    if not site.api_key_encrypted:
        return False
    try:
        return box.decrypt(site.api_key_encrypted) == api_key
    except UnreadableSecret:
        return False
