"""Encrypt mail passwords at rest with MultiFernet: the first key encrypts, every key decrypts."""

from __future__ import annotations

from functools import lru_cache

from cryptography.fernet import Fernet, InvalidToken, MultiFernet
from django.conf import settings
from django.core.exceptions import ImproperlyConfigured


class CredentialError(Exception):
    """A stored credential cannot be decrypted with any configured key."""


@lru_cache(maxsize=4)
def _fernet(keys: tuple[str, ...]) -> MultiFernet:
    try:
        return MultiFernet([Fernet(key.encode()) for key in keys])
    except (ValueError, TypeError) as exc:
        raise ImproperlyConfigured(
            "WEBMAIL_CREDENTIAL_KEYS must be comma-separated Fernet keys (32 url-safe base64 bytes)"
        ) from exc


def fernet() -> MultiFernet:
    """Return the MultiFernet for the configured keys (newest first)."""
    return _fernet(tuple(settings.WEBMAIL_CREDENTIAL_KEYS))


def encrypt(secret: str) -> str:
    """Return a token for SECRET; an empty secret stays empty (no password stored)."""
    if not secret:
        return ""
    return fernet().encrypt(secret.encode()).decode()


def decrypt(token: str) -> str:
    """Return the secret in TOKEN, or raise CredentialError when no key opens it."""
    if not token:
        return ""
    try:
        return fernet().decrypt(token.encode()).decode()
    except InvalidToken:
        raise CredentialError("a stored mail password cannot be decrypted with the configured keys")


def rotate(token: str) -> str:
    """Return TOKEN re-encrypted with the newest key."""
    if not token:
        return ""
    try:
        return fernet().rotate(token.encode()).decode()
    except InvalidToken:
        raise CredentialError("a stored mail password cannot be decrypted with the configured keys")
