"""One-time set-password links: signed, expiring, and void once used.

The token names the agent and a fingerprint of their current password hash and session
token. Setting a password changes both, so a link works once; an admin's new link (which
gives the agent a new unusable password) voids the older ones too; and disabling an agent
ends their sessions with a new session token, so a link issued before stays void after
the agent is enabled again.
"""
from __future__ import annotations

import hashlib

from flask import current_app
from itsdangerous import BadSignature, SignatureExpired, URLSafeTimedSerializer

from dashboard.extensions import db
from dashboard.models import Agent

SALT = "visitor-lookup/set-password"


class LinkProblem(Exception):
    """Why a set-password link cannot be used, as a sentence for the page."""


def _serializer() -> URLSafeTimedSerializer:
    return URLSafeTimedSerializer(current_app.secret_key, salt=SALT)


def _fingerprint(agent: Agent) -> str:
    return hashlib.sha256(f"{agent.password_hash}\n{agent.session_token}".encode()).hexdigest()[:32]


def make_set_password_token(agent: Agent) -> str:
    return _serializer().dumps({"agent": agent.id, "password": _fingerprint(agent)})


def link_max_age_seconds() -> int:
    return int(current_app.extensions["settings"].set_password_link_hours * 3600)


def agent_for_token(token: str) -> Agent:
    """The agent the link is for; raise LinkProblem when it is expired, used or forged."""
    try:
        data = _serializer().loads(token, max_age=link_max_age_seconds())
    except SignatureExpired:
        raise LinkProblem("This link has expired. Ask an admin for a new one.") from None
    except BadSignature:
        raise LinkProblem("This link is not valid. Check that it was copied whole, or ask an admin for a new one.") from None
    agent = db.session.get(Agent, data.get("agent")) if isinstance(data, dict) else None
    if agent is None or not agent.active:
        raise LinkProblem("This link is not valid any more. Ask an admin for a new one.")
    if data.get("password") != _fingerprint(agent):
        raise LinkProblem("This link has already been used, or a newer one replaced it. Ask an admin for a new one.")
    return agent
