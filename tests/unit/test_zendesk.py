"""dashboard/zendesk.py: the sidebar token checks, our card token, the app package."""
from __future__ import annotations

import io
import json
import time
import zipfile

import pytest

from dashboard import zendesk
from tests.support.zendesk import (
    INSTALLATION_ID,
    SUBDOMAIN,
    ZENDESK_USER_ID,
    claims,
    key_pair,
    sign,
    signed_with_public_key_as_hmac_secret,
    unsigned,
)

SECRET = "unit-test-secret-key-0123456789"


def verify(token: str | None, *, now: float | None = None, pem: str | None = None, installation: str = INSTALLATION_ID):
    return zendesk.verify_sidebar_token(
        token,
        public_key_pem=key_pair()[1] if pem is None else pem,
        subdomain=SUBDOMAIN,
        installation_id=installation,
        now=now,
    )


def test_a_valid_token_names_the_zendesk_user():
    assert verify(sign(claims())) == zendesk.ZendeskSignIn(subdomain=SUBDOMAIN, user_id=ZENDESK_USER_ID)


@pytest.mark.parametrize(
    ("token", "words", "status"),
    [
        pytest.param(None, "no signed Zendesk token", 401, id="missing"),
        pytest.param("", "no signed Zendesk token", 401, id="empty"),
        pytest.param("not.a.jwt", "not signed by this integration", 401, id="garbage"),
        pytest.param(sign(claims(issued=time.time() - 3600)), "expired", 401, id="expired"),
        pytest.param(sign(claims(installation_id="999")), "another app installation", 401, id="wrong-aud"),
        pytest.param(sign(claims(subdomain="evil")), "another Zendesk account", 401, id="foreign-account"),
        pytest.param(sign(claims(iss="evil.zendesk.com")), "another Zendesk account", 401, id="wrong-iss"),
        pytest.param(sign(claims(), key="other"), "not signed by this integration", 401, id="wrong-key"),
        pytest.param(unsigned(claims()), "not signed by this integration", 401, id="alg-none"),
        pytest.param(signed_with_public_key_as_hmac_secret(claims()), "not signed by this integration", 401, id="hs256-public-key"),
        pytest.param(sign(claims(location="ticket_editor")), "only in a ticket's sidebar", 403, id="wrong-location"),
        pytest.param(sign(claims(context="ticket_sidebar")), "only in a ticket's sidebar", 403, id="context-not-object"),
        pytest.param(sign(claims(sub="https://evil.zendesk.com/api/v2/users/1.json")), "not name an agent", 403, id="foreign-user"),
        pytest.param(sign(claims(sub="someone")), "not name an agent", 403, id="sub-not-user-url"),
        pytest.param(sign(claims(issued=time.time() + 3600)), "dated in the future", 401, id="future-iat"),
    ],
)
def test_every_bad_token_is_refused_with_a_sentence(token, words, status):
    with pytest.raises(zendesk.ZendeskRefused) as refused:
        verify(token)
    assert words in str(refused.value)
    assert refused.value.status == status


def test_a_token_without_expiry_is_refused():
    payload = claims()
    del payload["exp"]
    with pytest.raises(zendesk.ZendeskRefused, match="'exp'"):
        verify(sign(payload))


def test_a_token_replayed_after_expiry_is_refused_though_it_worked_before():
    issued = int(time.time())  # whole seconds, as in the token
    token = sign(claims(issued=issued, lifetime=300))
    assert verify(token, now=issued + 299).user_id == ZENDESK_USER_ID
    assert verify(token, now=issued + 300 + zendesk.LEEWAY_SECONDS).user_id == ZENDESK_USER_ID
    with pytest.raises(zendesk.ZendeskRefused, match="expired"):
        verify(token, now=issued + 301 + zendesk.LEEWAY_SECONDS)


@pytest.mark.parametrize("pem", ["", "-----BEGIN PUBLIC KEY-----\nnope\n-----END PUBLIC KEY-----\n"])
def test_an_integration_without_a_usable_key_is_a_503_with_what_to_do(pem):
    with pytest.raises(zendesk.ZendeskRefused, match="public key") as refused:
        verify(sign(claims()), pem=pem)
    assert refused.value.status == 503


def test_a_non_rsa_public_key_is_refused():
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric import ec

    pem = ec.generate_private_key(ec.SECP256R1()).public_key().public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    ).decode()
    with pytest.raises(zendesk.ZendeskRefused, match="public key"):
        verify(sign(claims()), pem=pem)


def test_card_token_round_trip_and_binding():
    token = zendesk.issue_card_token(SECRET, 7, ZENDESK_USER_ID)
    assert zendesk.read_card_token(SECRET, f"Bearer {token}", integration_id=7) == ZENDESK_USER_ID
    with pytest.raises(zendesk.ZendeskRefused, match="another integration") as other:
        zendesk.read_card_token(SECRET, f"Bearer {token}", integration_id=8)
    assert other.value.status == 403
    with pytest.raises(zendesk.ZendeskRefused, match="not valid"):
        zendesk.read_card_token("another-secret-key-0123456789", f"Bearer {token}", integration_id=7)
    with pytest.raises(zendesk.ZendeskRefused, match="not valid"):
        zendesk.read_card_token(SECRET, f"Bearer {token[:-2]}xx", integration_id=7)


@pytest.mark.parametrize("header", [None, "", "Bearer", "Bearer   ", "Basic abc", "token"])
def test_card_token_missing_is_refused(header):
    with pytest.raises(zendesk.ZendeskRefused, match="without the sidebar's token"):
        zendesk.read_card_token(SECRET, header, integration_id=7)


def test_card_token_lasts_at_most_ten_minutes():
    assert zendesk.CARD_TOKEN_SECONDS <= 600
    token = zendesk.issue_card_token(SECRET, 7, ZENDESK_USER_ID)
    later = time.time() + zendesk.CARD_TOKEN_SECONDS
    assert zendesk.read_card_token(SECRET, f"Bearer {token}", integration_id=7, now=lambda: later - 5) == ZENDESK_USER_ID
    with pytest.raises(zendesk.ZendeskRefused, match="expired"):
        zendesk.read_card_token(SECRET, f"Bearer {token}", integration_id=7, now=lambda: later + 5)


def test_app_package_is_a_zendesk_app_filled_in_for_the_integration():
    url = "https://lookup.example.org/embed/zendesk/acme-support"
    package = zipfile.ZipFile(io.BytesIO(zendesk.app_package(name="Acme visitors", sidebar_url=url)))
    assert set(package.namelist()) == {"manifest.json", "translations/en.json", "assets/logo.png", "assets/logo-small.png"}
    manifest = json.loads(package.read("manifest.json"))
    assert manifest["signedUrls"] is True
    assert manifest["location"]["support"]["ticket_sidebar"]["url"] == url
    assert manifest["name"] == "Acme visitors"
    assert manifest["frameworkVersion"] == "2.0" and manifest["defaultLocale"] == "en"
    assert json.loads(package.read("translations/en.json"))["app"]["short_description"]
    assert package.read("assets/logo.png").startswith(b"\x89PNG")
