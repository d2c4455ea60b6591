"""Encryption at rest for secrets: Fernet keys from settings, rotation with MultiFernet.

The first key in ``WHARF_ENCRYPTION_KEYS`` encrypts; every key decrypts, so an
operator rotates by putting a new key first and running ``manage.py rotate_keys``.
"""

from functools import cache

from cryptography.fernet import Fernet, InvalidToken, MultiFernet
from django.conf import settings
from django.core.exceptions import ImproperlyConfigured
from django.db import models

PREFIX = "fernet:"


@cache
def _fernet(keys: tuple[str, ...]) -> MultiFernet:
    try:
        return MultiFernet([Fernet(k.encode()) for k in keys])
    except (ValueError, TypeError) as exc:
        raise ImproperlyConfigured(
            "WHARF_ENCRYPTION_KEYS holds a value that is not a Fernet key "
            "(32 url-safe base64-encoded bytes)."
        ) from exc


def fernet() -> MultiFernet:
    return _fernet(tuple(settings.WHARF_ENCRYPTION_KEYS))


def encrypt(plaintext: str) -> str:
    return PREFIX + fernet().encrypt(plaintext.encode()).decode()


def decrypt(stored: str) -> str:
    if not stored.startswith(PREFIX):
        raise ValueError("stored secret is not in the encrypted format")
    try:
        return fernet().decrypt(stored[len(PREFIX) :].encode()).decode()
    except InvalidToken as exc:
        raise ImproperlyConfigured(
            "A stored secret cannot be decrypted with any key in WHARF_ENCRYPTION_KEYS: "
            "was a key removed before the secrets were rotated to the new one?"
        ) from exc


def rotate(stored: str) -> str:
    """Re-encrypt a stored value with the first (newest) key."""
    return PREFIX + fernet().rotate(stored[len(PREFIX) :].encode()).decode()


class EncryptedTextField(models.TextField):
    """A text field stored encrypted; Python code sees plaintext, the database never does.

    Empty means "no secret" and is stored as an empty string (nothing to hide).
    """

    def from_db_value(self, value, expression, connection):
        if not value:
            return ""
        return decrypt(value)

    def get_prep_value(self, value):
        value = super().get_prep_value(value)
        if not value:
            return ""
        return encrypt(value)

    def formfield(self, **kwargs):  # type: ignore[override]  # Django's own fields do the same
        # Never let a generic ModelForm render a stored secret back into a page.
        from django import forms

        kwargs.setdefault("widget", forms.PasswordInput(render_value=False))
        return super().formfield(**kwargs)
