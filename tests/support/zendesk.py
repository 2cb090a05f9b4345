"""Zendesk signed-URL tokens for tests, from throwaway RSA key pairs (made once a session)."""
from __future__ import annotations

import base64
import json
import time
from functools import lru_cache

import jwt
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa

from dashboard.extensions import db
from dashboard.integrations.agents import zendesk_user_key
from dashboard.models import Agent, Integration

SUBDOMAIN = "acme"
SLUG = "acme-support"
FIELD = "360011112222"  # the ticket field holding the visitor ID
INSTALLATION_ID = "360001234"
ZENDESK_USER_ID = "4242"


def key_pair(name: str = "app") -> tuple[bytes, str]:
    """(private key PEM, public key PEM) of a throwaway RSA key, one per ``name``."""
    return _key_pair(name)  # one cache key per name, however it is called


@lru_cache(maxsize=None)
def _key_pair(name: str) -> tuple[bytes, str]:
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    private = key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption())
    public = key.public_key().public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)
    return private, public.decode()


def claims(
    *,
    subdomain: str = SUBDOMAIN,
    installation_id: str = INSTALLATION_ID,
    user_id: str = ZENDESK_USER_ID,
    location: str = "ticket_sidebar",
    issued: float | None = None,
    lifetime: float = 300,
    **changes: object,
) -> dict:
    """Claims shaped like Zendesk's signed-URL token."""
    issued = time.time() if issued is None else issued
    return {
        "iss": f"{subdomain}.zendesk.com",
        "aud": f"https://{subdomain}.zendesk.com/api/v2/apps/installations/{installation_id}.json",
        "sub": f"https://{subdomain}.zendesk.com/api/v2/users/{user_id}.json",
        "context": {"product": "support", "location": location},
        "iat": int(issued),
        "exp": int(issued + lifetime),
        **changes,
    }


def sign(payload: dict, *, key: str = "app") -> str:
    return jwt.encode(payload, key_pair(key)[0], algorithm="RS256")


def unsigned(payload: dict) -> str:
    """An ``alg: none`` token (PyJWT refuses to make one with a key in hand)."""
    def part(value: dict) -> str:
        return base64.urlsafe_b64encode(json.dumps(value).encode()).rstrip(b"=").decode()

    return f"{part({'alg': 'none', 'typ': 'JWT'})}.{part(payload)}."


def signed_with_public_key_as_hmac_secret(payload: dict, *, key: str = "app") -> str:
    """The algorithm-confusion attack: HS256 with the (public) RSA key as the secret.
    Built by hand because PyJWT refuses a PEM as an HMAC secret."""
    import hashlib
    import hmac

    def part(value: bytes) -> str:
        return base64.urlsafe_b64encode(value).rstrip(b"=").decode()

    head = part(json.dumps({"alg": "HS256", "typ": "JWT"}).encode())
    body = part(json.dumps(payload).encode())
    mac = hmac.new(key_pair(key)[1].encode(), f"{head}.{body}".encode(), hashlib.sha256).digest()
    return f"{head}.{body}.{part(mac)}"


def add_integration(app, slug: str = SLUG, **changes) -> int:
    with app.app_context():
        fields = dict(
            slug=slug,
            kind="zendesk",
            name="Acme support",
            account=SUBDOMAIN,
            installation_id=INSTALLATION_ID,
            visitor_field=FIELD,
            public_key_pem=key_pair()[1],
        )
        integration = Integration(**{**fields, **changes})
        db.session.add(integration)
        db.session.commit()
        return integration.id


def link_agent(
    app, agent_id: int, zendesk_user_id: str | None = ZENDESK_USER_ID, *, active: bool = True, account: str = SUBDOMAIN
) -> None:
    """Link the agent to a Zendesk user of ``account`` (stored as account/ID)."""
    with app.app_context():
        agent = db.session.get(Agent, agent_id)
        agent.zendesk_user_id = zendesk_user_key(account, zendesk_user_id) if zendesk_user_id else None
        agent.active = active
        db.session.commit()
