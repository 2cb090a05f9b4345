"""Zendesk's side of the sidebar card: the signed first load, our short-lived card token,
and the app package an admin uploads to Zendesk.

Zendesk loads a ticket-sidebar app whose manifest says ``"signedUrls": true`` by POSTing a
form field ``token``: a JWT signed RS256 with the app's key pair. Only its public key is
stored here, so only RS256 with that key is accepted: never ``alg: none``, never an HMAC
algorithm (which would let anyone who has the public key sign). The page it answers loads
the card with a token of ours (:func:`issue_card_token`), sent in an ``Authorization``
header: inside Zendesk's frame our cookie is not sent (SameSite=Lax), nor wanted.

Nothing here imports Flask request state; the embed blueprint passes what it needs.
"""
from __future__ import annotations

import io
import json
import re
import time
import zipfile
from dataclasses import dataclass
from importlib import resources
from typing import Callable

import jwt
from cryptography.hazmat.primitives.asymmetric.rsa import RSAPublicKey
from cryptography.hazmat.primitives.serialization import load_pem_public_key
from itsdangerous import BadSignature, SignatureExpired, URLSafeTimedSerializer

SIDEBAR_LOCATION = "ticket_sidebar"
LEEWAY_SECONDS = 15  # clock skew between Zendesk and us
CARD_TOKEN_SECONDS = 10 * 60  # the issue's bound: at most 10 minutes
CARD_TOKEN_SALT = "zendesk-sidebar-card"
SUBDOMAIN = re.compile(r"[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?")
# ``sub`` is the agent's user URL: https://{subdomain}.zendesk.com/api/v2/users/{id}.json
USER_URL = re.compile(r"https://(?P<subdomain>[a-z0-9-]+)\.zendesk\.com/api/v2/users/(?P<user_id>\d+)(?:\.json)?")


class ZendeskRefused(Exception):
    """A Zendesk token or card token that must not open a card; ``str()`` is the
    sentence shown to the agent, ``status`` the HTTP status."""

    def __init__(self, sentence: str, status: int = 401) -> None:
        super().__init__(sentence)
        self.status = status


@dataclass(frozen=True)
class ZendeskSignIn:
    """What a verified sidebar token says: which Zendesk account and which of its agents."""

    subdomain: str
    user_id: str


def zendesk_host(subdomain: str) -> str:
    return f"{subdomain}.zendesk.com"


def zendesk_origin(subdomain: str) -> str:
    """The origin Zendesk's agent workspace runs on: the one frame allowed to show /embed."""
    return f"https://{zendesk_host(subdomain)}"


def expected_audience(subdomain: str, installation_id: str) -> str:
    return f"{zendesk_origin(subdomain)}/api/v2/apps/installations/{installation_id}.json"


def valid_subdomain(subdomain: str) -> bool:
    return bool(SUBDOMAIN.fullmatch(subdomain or ""))


def rsa_public_key(pem: str | None) -> RSAPublicKey:
    """The stored PEM as an RSA public key, or ZendeskRefused (a misconfigured
    integration: said to the agent as such, never a 500)."""
    try:
        key = load_pem_public_key((pem or "").encode())
    except ValueError:
        key = None
    if not isinstance(key, RSAPublicKey):
        raise ZendeskRefused(
            "This integration has no usable Zendesk public key: ask an admin to paste the app's public key "
            "(from /api/v2/apps/{app_id}/public_key.pem) into the integration.",
            status=503,
        )
    return key


def verify_sidebar_token(
    token: str | None,
    *,
    public_key_pem: str | None,
    subdomain: str,
    installation_id: str | None,
    now: float | None = None,
) -> ZendeskSignIn:
    """Check a Zendesk signed-URL token and return who it names, or raise ZendeskRefused.

    The signature (RS256 with the stored key only), ``iss``, ``aud``, ``exp``/``iat`` (with
    a small leeway; a token replayed after it expired is refused like any expired one),
    ``context.location`` and ``sub`` (a user of the same account) are all checked.
    """
    if not token:
        raise ZendeskRefused(
            "This page opens only from the Visitor Lookup app in a Zendesk ticket (no signed Zendesk token came "
            "with the request). Make sure the app's manifest has \"signedUrls\": true."
        )
    key = rsa_public_key(public_key_pem)
    if not installation_id:
        raise ZendeskRefused("This integration has no Zendesk app installation ID: ask an admin to fill it in.", status=503)
    moment = time.time() if now is None else now
    try:
        # Expiry is checked below against ``moment`` (PyJWT reads the clock itself).
        claims = jwt.decode(
            token,
            key,
            algorithms=["RS256"],
            audience=expected_audience(subdomain, installation_id),
            issuer=zendesk_host(subdomain),
            options={"require": ["exp", "iat", "iss", "aud", "sub"], "verify_exp": False, "verify_iat": False},
        )
    except jwt.InvalidAudienceError:
        raise ZendeskRefused(
            "This Zendesk token was made for another app installation: check the installation ID in the integration."
        ) from None
    except jwt.InvalidIssuerError:
        raise ZendeskRefused("This Zendesk token comes from another Zendesk account than this integration's.") from None
    except jwt.MissingRequiredClaimError as missing:
        raise ZendeskRefused(f"This Zendesk token lacks its {missing.claim!r} claim, so it cannot be trusted.") from None
    except jwt.InvalidTokenError:
        # Wrong key, alg none, HS256 and other algorithms, a malformed token.
        raise ZendeskRefused(
            "This Zendesk token is not signed by this integration's Zendesk app: if the app was reinstalled, "
            "ask an admin to paste its new public key into the integration."
        ) from None
    _check_times(claims, moment)
    context = claims.get("context")
    if not isinstance(context, dict) or context.get("location") != SIDEBAR_LOCATION:
        raise ZendeskRefused("The visitor card opens only in a ticket's sidebar in Zendesk.", status=403)
    user = USER_URL.fullmatch(str(claims["sub"]))
    if user is None or user["subdomain"] != subdomain:
        raise ZendeskRefused("This Zendesk token does not name an agent of this Zendesk account.", status=403)
    return ZendeskSignIn(subdomain=subdomain, user_id=user["user_id"])


def _check_times(claims: dict, moment: float) -> None:
    try:
        expires, issued = float(claims["exp"]), float(claims["iat"])
    except (TypeError, ValueError):
        raise ZendeskRefused("This Zendesk token has no readable expiry, so it cannot be trusted.") from None
    if moment > expires + LEEWAY_SECONDS:
        raise ZendeskRefused("This Zendesk sign-in has expired: reload the ticket (or the app) to see the card.")
    if issued > moment + LEEWAY_SECONDS:
        raise ZendeskRefused("This Zendesk token is dated in the future: check the server's clock.")


# -- our card token ------------------------------------------------------------------


def _card_serializer(secret_key: str) -> URLSafeTimedSerializer:
    return URLSafeTimedSerializer(secret_key, salt=CARD_TOKEN_SALT)


def issue_card_token(secret_key: str, integration_id: int, zendesk_user_id: str) -> str:
    """A token that lets the sidebar page load cards for this integration and Zendesk
    user for CARD_TOKEN_SECONDS (HMAC-signed with SECRET_KEY; dated inside)."""
    return _card_serializer(secret_key).dumps({"integration": integration_id, "user": zendesk_user_id})


def read_card_token(
    secret_key: str,
    authorization: str | None,
    *,
    integration_id: int,
    max_age: int = CARD_TOKEN_SECONDS,
    now: Callable[[], float] | None = None,
) -> str:
    """The Zendesk user ID an ``Authorization: Bearer`` card token was issued to, or
    ZendeskRefused: missing, tampered, expired or issued for another integration."""
    scheme, _, token = (authorization or "").partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        raise ZendeskRefused("The card was asked for without the sidebar's token: reload the ticket to see it.")
    serializer = _card_serializer(secret_key)
    try:
        if now is None:
            payload = serializer.loads(token.strip(), max_age=max_age)
        else:
            payload, signed_at = serializer.loads(token.strip(), return_timestamp=True)
            if now() - signed_at.timestamp() > max_age:
                raise SignatureExpired("expired")
    except SignatureExpired:
        raise ZendeskRefused("The sidebar has been open a while and its token expired: reload the ticket to see the card.") from None
    except BadSignature:
        raise ZendeskRefused("The sidebar's token is not valid: reload the ticket to see the card.") from None
    if not isinstance(payload, dict) or payload.get("integration") != integration_id or not payload.get("user"):
        raise ZendeskRefused("This sidebar's token belongs to another integration: reload the ticket.", status=403)
    return str(payload["user"])


# -- the app package -----------------------------------------------------------------

APP_FILES = ("manifest.json", "translations/en.json")


def app_package(*, name: str, sidebar_url: str) -> bytes:
    """The Zendesk app as a zip ready to upload as a private app: the packaged manifest
    and translations (dashboard/zendesk_app/), filled in for one integration."""
    folder = resources.files("dashboard").joinpath("zendesk_app")
    manifest = json.loads(folder.joinpath("manifest.json").read_text(encoding="utf-8"))
    manifest["name"] = name
    manifest["location"]["support"]["ticket_sidebar"]["url"] = sidebar_url
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", compression=zipfile.ZIP_DEFLATED) as package:
        package.writestr("manifest.json", json.dumps(manifest, indent=2) + "\n")
        for path in APP_FILES[1:]:
            package.writestr(path, folder.joinpath(path).read_text(encoding="utf-8"))
        for path in ("assets/logo.png", "assets/logo-small.png"):
            package.writestr(path, folder.joinpath(path).read_bytes())
    return buffer.getvalue()
