"""An integration's secrets: encrypted at rest with the KeyBox (like sites' API keys),
shown by their last four characters, two accepted while a rotation runs."""
from __future__ import annotations

from dashboard.encryption import KeyBox, UnreadableSecret
from dashboard.models import Integration


def store_secret(integration: Integration, secret: str, key_box: KeyBox, *, rotate: bool = False) -> None:
    """Set the current secret; with ``rotate`` the one it replaces stays accepted as the
    previous secret until ``end_rotation``."""
    if rotate and integration.secret_encrypted:
        integration.previous_secret_encrypted = integration.secret_encrypted
        integration.previous_secret_last4 = integration.secret_last4
    elif not rotate:
        end_rotation(integration)
    integration.secret_encrypted = key_box.encrypt(secret)
    integration.secret_last4 = secret[-4:]


def end_rotation(integration: Integration) -> None:
    """Stop accepting the previous secret."""
    integration.previous_secret_encrypted = None
    integration.previous_secret_last4 = None


def accepted_secrets(integration: Integration, key_box: KeyBox) -> list[str]:
    """The secrets a request may be signed with: the current one, then the previous one
    during a rotation. One that cannot be decrypted (another SECRET_KEY) is left out."""
    found = []
    for token in (integration.secret_encrypted, integration.previous_secret_encrypted):
        if not token:
            continue
        try:
            found.append(key_box.decrypt(token))
        except UnreadableSecret:
            continue
    return found


def secret_unreadable(integration: Integration, key_box: KeyBox) -> bool:
    """Whether a secret is stored but cannot be decrypted (the admin must enter it again)."""
    return bool(integration.secret_encrypted) and not accepted_secrets(integration, key_box)
