"""Help-desk integrations for tests: stored as an admin would, and Intercom's requests
shaped like its documentation's (admin, contact with custom_attributes, conversation,
context), signed over the raw body as Intercom signs them."""
from __future__ import annotations

import functools
import hashlib
import hmac
import json
from typing import Any

from dashboard.extensions import db
from dashboard.integrations.secrets import store_secret
from dashboard.models import Integration

INTERCOM_SECRET = "intercom-client-secret-0123456789abcdef"
JSON_SECRET = "static-header-secret-9876543210"
CONVERSATION_STARTED = 1707678600  # 2024-02-11T19:10:00Z: visitor_signals's ticket moment


def add_integration(app, kind: str, slug: str, *, secret: str | None = None, visitor_field: str = "visitorId", **fields) -> None:
    with app.app_context():
        integration = Integration(slug=slug, kind=kind, name=slug.title(), account=fields.pop("account", "acme"), visitor_field=visitor_field, **fields)
        if secret:
            store_secret(integration, secret, app.extensions["key_box"])
        db.session.add(integration)
        db.session.commit()


def intercom_payload(email: str, visitor_id: str | None, *, created_at: int = CONVERSATION_STARTED, attribute: str = "visitorId", **extra) -> dict[str, Any]:
    attributes = {} if visitor_id is None else {attribute: visitor_id}
    return {
        "workspace_id": "ecahpwf5",
        "workspace_region": "us",
        "admin": {"type": "admin", "id": "4816421", "name": "Sam Agent", "email": email, "away_mode_enabled": False},
        "contact": {
            "type": "user",
            "id": "5ba682d23d7cf92bef87bfd4",
            "email": "customer@example.com",
            "custom_attributes": {"plan": "pro", **attributes},
        },
        "conversation": {"type": "conversation", "id": "147", "created_at": created_at, "state": "open"},
        "context": {"conversation_id": 147, "location": "conversation", "locale": "en"},
        **extra,
    }


def signed(payload: dict[str, Any], secret: str = INTERCOM_SECRET) -> tuple[bytes, dict[str, str]]:
    """The raw body and the headers Intercom sends with it."""
    body = json.dumps(payload).encode()
    signature = hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()
    return body, {"X-Body-Signature": signature, "Content-Type": "application/json"}


@functools.cache
def rsa_key_pair() -> tuple[bytes, str]:
    """A throwaway RSA key pair for a Zendesk integration: (private key PEM, public key PEM)."""
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric import rsa

    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    private = key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption())
    public = key.public_key().public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo).decode()
    return private, public
