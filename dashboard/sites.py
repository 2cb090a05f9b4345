"""PostMetric sites: which base URL and key a look-up uses."""
from __future__ import annotations

from dataclasses import dataclass, field

from dashboard.config import Settings


@dataclass(frozen=True)
class SiteRef:
    """One PostMetric website: its name, its API's base URL and its key (server-side only)."""

    slug: str
    name: str
    base_url: str
    api_key: str = field(repr=False)

    @property
    def key_hint(self) -> str:
        return f"…{self.api_key[-4:]}" if len(self.api_key) >= 4 else "…"


def sites_from_settings(settings: Settings) -> list[SiteRef]:
    if settings.postmetric_api_url and settings.postmetric_api_key:
        return [SiteRef("default", "Default site", settings.postmetric_api_url, settings.postmetric_api_key)]
    return []
