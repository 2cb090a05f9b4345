"""The dashboard's own tables (SQLAlchemy 2.0 typed models)."""
from __future__ import annotations

import secrets
from datetime import datetime, timezone

from flask_login import UserMixin
from sqlalchemy import Boolean, DateTime, ForeignKey, Index, Integer, String, Text, false, func, text, true
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column, relationship
from werkzeug.security import check_password_hash, generate_password_hash

from dashboard.passwords import password_problem


def utcnow() -> datetime:
    return datetime.now(timezone.utc)


class Base(DeclarativeBase):
    pass


class Agent(UserMixin, Base):
    """A person who may log in: a support agent or an admin."""

    __tablename__ = "agents"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    # Stored lower-cased, so the unique index makes e-mail case-insensitive.
    email: Mapped[str] = mapped_column(String(320), unique=True)
    password_hash: Mapped[str] = mapped_column(String(255))
    is_admin: Mapped[bool] = mapped_column(Boolean, default=False, server_default=false())
    active: Mapped[bool] = mapped_column(Boolean, default=True, server_default=true())
    timezone: Mapped[str] = mapped_column(String(64), default="UTC", server_default="UTC")
    # False until the agent picks a zone on the account page; until then each login
    # takes the zone the browser reports.
    timezone_chosen: Mapped[bool] = mapped_column(Boolean, default=False, server_default=false())
    # Part of the login cookie's identity: changing it ends every open session.
    session_token: Mapped[str] = mapped_column(String(64), default=lambda: secrets.token_hex(16))
    # The agent's Zendesk user ID (the number at the end of a signed token's ``sub``):
    # how a Zendesk sidebar maps its agent to this one. None: not linked.
    zendesk_user_id: Mapped[str | None] = mapped_column(String(64), unique=True, nullable=True)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow, server_default=func.now())

    lookups: Mapped[list["LookupEvent"]] = relationship(back_populates="agent")

    @staticmethod
    def normalise_email(email: str) -> str:
        return email.strip().lower()

    def set_password(self, password: str) -> None:
        """Store a new password; every open session of this agent ends."""
        problem = password_problem(password)
        if problem:
            raise ValueError(problem)
        self.password_hash = generate_password_hash(password)
        self.session_token = secrets.token_hex(16)

    def set_unusable_password(self) -> None:
        """A random password nobody knows: the agent can only log in after a set-password link."""
        self.set_password(secrets.token_urlsafe(32))

    def check_password(self, password: str) -> bool:
        return check_password_hash(self.password_hash, password)

    @property
    def is_active(self) -> bool:  # flask-login refuses inactive agents
        return bool(self.active)

    def get_id(self) -> str:
        return f"{self.id}:{self.session_token}"

    def end_sessions(self) -> None:
        self.session_token = secrets.token_hex(16)


class Site(Base):
    """A PostMetric website: its API's base URL and its key, encrypted at rest."""

    __tablename__ = "sites"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    # Names the site in URLs (?site=) and in the audit trail; never changes.
    slug: Mapped[str] = mapped_column(String(64), unique=True)
    name: Mapped[str] = mapped_column(String(200))
    base_url: Mapped[str] = mapped_column(String(500))
    # Fernet token of the key (see dashboard.encryption); the key itself is never stored.
    api_key_encrypted: Mapped[str] = mapped_column(Text)
    api_key_last4: Mapped[str] = mapped_column(String(4))
    # Where a ticket reference leads, e.g. https://acme.zendesk.com/agent/tickets/{ticket}
    # (see dashboard.tickets); None: tickets are shown as text.
    ticket_url_template: Mapped[str | None] = mapped_column(String(500), nullable=True)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow, onupdate=utcnow)

    @property
    def key_hint(self) -> str:
        return f"…{self.api_key_last4}"


class Integration(Base):
    """A help desk that shows the visitor's card beside its tickets (Zendesk, Intercom,
    or any help desk that can call a URL with a static secret header: "json")."""

    __tablename__ = "integrations"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    # Names the integration in its URLs and in the audit trail; never changes.
    slug: Mapped[str] = mapped_column(String(64), unique=True)
    kind: Mapped[str] = mapped_column(String(20))  # "zendesk" | "intercom" | "json"
    name: Mapped[str] = mapped_column(String(200))
    # Zendesk subdomain, Intercom workspace id, or free text for "json".
    account: Mapped[str] = mapped_column(String(200), default="", server_default=text("''"))
    # Zendesk app installation id (the signed token's ``aud`` names it).
    installation_id: Mapped[str | None] = mapped_column(String(64), nullable=True)
    # The site to ask; None: every site, in order.
    site_slug: Mapped[str | None] = mapped_column(String(64), nullable=True)
    # Zendesk ticket custom field id / Intercom contact attribute name; unused for "json".
    visitor_field: Mapped[str] = mapped_column(String(200), default="", server_default=text("''"))
    # Fernet tokens (see dashboard.encryption) of the Intercom client secret or the
    # static secret of a "json" integration; unused for Zendesk.
    secret_encrypted: Mapped[str | None] = mapped_column(Text, nullable=True)
    secret_last4: Mapped[str | None] = mapped_column(String(4), nullable=True)
    # The secret before the last rotation, still accepted until the rotation ends.
    previous_secret_encrypted: Mapped[str | None] = mapped_column(Text, nullable=True)
    previous_secret_last4: Mapped[str | None] = mapped_column(String(4), nullable=True)
    # The Zendesk app's RS256 public key (PEM), which verifies its signed tokens.
    public_key_pem: Mapped[str | None] = mapped_column(Text, nullable=True)
    # Zendesk: show the card to every agent of that Zendesk account, linked or not.
    trust_all_agents: Mapped[bool] = mapped_column(Boolean, default=False, server_default=false())
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)

    @property
    def secret_hint(self) -> str:
        return f"…{self.secret_last4}" if self.secret_last4 else ""

    @property
    def previous_secret_hint(self) -> str:
        return f"…{self.previous_secret_last4}" if self.previous_secret_last4 else ""


class LookupEvent(Base):
    """One look-up (or refresh, or export) of a visitor by an agent: the audit trail."""

    __tablename__ = "lookup_events"
    __table_args__ = (
        Index("ix_lookup_events_agent_created", "agent_id", "created_at"),
        Index("ix_lookup_events_visitor", "visitor_id"),
        Index("ix_lookup_events_created", "created_at"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    agent_id: Mapped[int | None] = mapped_column(ForeignKey("agents.id", ondelete="SET NULL"), nullable=True)
    # text("''"): the same DEFAULT '' as the migration's "", in the form Alembic's SQLite
    # comparison reads back (it takes a bare "" for a different default).
    site: Mapped[str] = mapped_column(String(200), default="", server_default=text("''"))
    visitor_id: Mapped[str] = mapped_column(Text)
    action: Mapped[str] = mapped_column(String(20), default="lookup", server_default="lookup")
    outcome: Mapped[str] = mapped_column(String(40), default="ok", server_default="ok")
    ticket: Mapped[str | None] = mapped_column(String(200), nullable=True)
    # A card shown inside a help desk: the integration's slug and the help desk's own
    # reference of its agent (Zendesk user URL, Intercom admin e-mail). None: the dashboard.
    integration: Mapped[str | None] = mapped_column(String(64), nullable=True)
    helpdesk_agent: Mapped[str | None] = mapped_column(String(320), nullable=True)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)

    agent: Mapped[Agent | None] = relationship(back_populates="lookups")
