"""Encryption at rest for the sites' PostMetric API keys (Fernet: AES-128-CBC + HMAC).

The Fernet key is DASHBOARD_ENCRYPTION_KEY when it is set, otherwise one derived from
SECRET_KEY with HKDF-SHA256 (a key of its own, so the session-signing key is never used
to encrypt). Keys encrypted under the derived key stay readable after a dedicated key is
introduced, and are re-encrypted under it at the next start (see ``rotate``).
"""
from __future__ import annotations

import base64
from collections.abc import Callable

from cryptography.fernet import Fernet, InvalidToken, MultiFernet
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

from dashboard.config import Settings

HKDF_INFO = b"visitor-lookup/site-api-keys/v1"


class UnreadableSecret(Exception):
    """A stored key cannot be decrypted: it was encrypted with another SECRET_KEY or
    DASHBOARD_ENCRYPTION_KEY, or it was altered."""


def derived_key(secret_key: str) -> bytes:
    """A Fernet key derived from ``secret_key`` (URL-safe base64 of 32 bytes)."""
    material = HKDF(algorithm=hashes.SHA256(), length=32, salt=None, info=HKDF_INFO).derive(secret_key.encode())
    return base64.urlsafe_b64encode(material)


class KeyBox:
    """Encrypts with the first key, decrypts with any of them."""

    def __init__(self, keys: list[bytes | str]) -> None:
        if not keys:
            raise ValueError("KeyBox needs at least one key")
        fernets = [Fernet(key) for key in keys]
        self._primary = fernets[0]
        self._fernet = MultiFernet(fernets)

    @classmethod
    def from_settings(cls, settings: Settings) -> "KeyBox":
        keys: list[bytes | str] = []
        if settings.encryption_key:
            keys.append(settings.encryption_key)
        keys.append(derived_key(settings.secret_key))
        return cls(keys)

    def __repr__(self) -> str:
        return "KeyBox(…)"

    def encrypt(self, plaintext: str) -> str:
        return self._fernet.encrypt(plaintext.encode()).decode("ascii")

    def decrypt(self, token: str) -> str:
        return self._open(self._fernet.decrypt, token).decode()

    def is_current(self, token: str) -> bool:
        """Whether ``token`` is encrypted under the first key already."""
        try:
            self._primary.decrypt(token.encode("ascii"))
        except (InvalidToken, UnicodeError):
            return False
        return True

    def rotate(self, token: str) -> str:
        """The same secret encrypted under the first key."""
        return self._open(self._fernet.rotate, token).decode("ascii")

    @staticmethod
    def _open(operation: Callable[[bytes], bytes], token: str) -> bytes:
        try:
            return operation(token.encode("ascii"))
        except (InvalidToken, UnicodeError) as error:
            raise UnreadableSecret("the stored key cannot be decrypted with the configured keys") from error
